"""`kefu data validate` on a copy of the demo shop: answers that state a policy differently are warnings naming both
places, a malformed `policies:` section or FAQ title is an error with its file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A copy of the project's config, domain and data that a test may change."""
    shutil.copy(ROOT / "config.yml", tmp_path / "config.yml")
    shutil.copy(ROOT / "domain.yml", tmp_path / "domain.yml")
    shutil.copytree(ROOT / "data", tmp_path / "data")
    return tmp_path


def validate(shop: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    """Exit code, warning lines and error output of `kefu data validate` on `shop`."""
    code = main(["data", "validate", "--config", str(shop / "config.yml"), "--domain", str(shop / "domain.yml"),
                 "--data", str(shop / "data")])
    out = capsys.readouterr()
    warnings = [line for line in out.err.splitlines() if line.startswith("Warning: ")]
    return code, warnings, out.err


def edit(path: Path, old: str, new: str) -> int:
    """Replace the one occurrence of `old` in `path`; the line it is on."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def line_of(path: Path, needle: str) -> int:
    text = path.read_text(encoding="utf-8")
    assert text.count(needle) == 1, needle
    return text[: text.index(needle)].count("\n") + 1


def test_the_demo_shop_states_every_policy_alike(shop, capsys):
    code, warnings, _ = validate(shop, capsys)
    assert code == 0 and warnings == []


@pytest.mark.parametrize(
    ("file", "old", "new", "policy", "found", "value", "agreeing"),
    [
        ("data/faq.yml", "free on orders of ¥99 or more (the amount", "free over ¥88 (the amount",
         "free_shipping_from", "88", "99", "中国大陆订单实付满 99 元（含 99 元）包邮"),
        ("data/faq.yml", "签收后 7 天内支持无理由退货", "退货 10 天内无需理由",
         "return_window_days", "10", "7", "You can return most items within 7 days of delivery"),
        ("data/canned_replies.yml", "within 1–3 business days after the return reaches", "within 2-5 business days "
         "after the return reaches", "refund_business_days", "2–5", "1–3",
         "退货寄回仓库后 1–3 个工作日内会原路退款"),
        ("domain.yml", "(daily 9:00–21:00 China time)", "(daily 8:00 to 22:00 China time)",
         "service_hours", "8:00–22:00", "9:00–21:00", "复杂的问题我可以帮您转接人工客服（每天 9:00–21:00）"),
    ],
)
def test_a_planted_conflict_is_a_warning_naming_both_places(shop, capsys, file, old, new, policy, found, value,
                                                            agreeing):
    changed = edit(shop / file, old, new)
    code, warnings, _ = validate(shop, capsys)
    assert code == 0, "warnings do not fail validation"
    assert len(warnings) == 1, warnings
    declared = line_of(shop / "data" / "faq.yml", f"  {policy}:\n")
    other = line_of(shop / file, agreeing)
    assert f"{shop / file}:{changed} " in warnings[0] and f" as {found} " in warnings[0]
    assert f"the policy says {value} ({shop / 'data' / 'faq.yml'}:{declared})" in warnings[0]
    assert f"{shop / file}:{other} " in warnings[0] and warnings[0].endswith(f"says {value}"), "and another answer"


def test_without_a_declared_value_the_odd_answer_out_is_named(shop, capsys):
    faq = shop / "data" / "faq.yml"
    edit(faq, "  price_protection_days:\n    value: 7\n", "  price_protection_days:\n")
    changed = edit(faq, "购买后 7 天内本店降价，", "购买后 5 天内本店降价，")
    code, warnings, _ = validate(shop, capsys)
    english = line_of(faq, "If the price of an item drops in our store within 7 days")
    assert code == 0 and len(warnings) == 1
    assert f"{faq}:{changed} (FAQ price_match, zh) states price_protection_days as 5" in warnings[0]
    assert f"{faq}:{english} (FAQ price_match, en) says 7" in warnings[0]


def test_a_policy_no_answer_states_is_a_warning(shop, capsys):
    faq = shop / "data" / "faq.yml"
    declared = edit(faq, "    en: ['(\\d+)\\+ pieces']", "    en: ['(\\d+)\\+ items']")
    edit(faq, "    zh: ['(\\d+)\\s*件以上']", "    zh: ['(\\d+)\\s*件起']")
    code, warnings, _ = validate(shop, capsys)
    assert code == 0
    assert warnings == [f"Warning: {faq}:{declared - 2}: policy bulk_order_pieces (50): no answer states it — "
                        "check its patterns"]


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("    en: ['paid before (\\d{1,2}:\\d\\d)']", "    en: ['paid before \\d{1,2}:\\d\\d']",
         "needs exactly one group"),
        ("    en: ['paid before (\\d{1,2}:\\d\\d)']", "    en: ['paid before (\\d{1,2}:\\d\\d']",
         "is not a regular expression"),
        ("    value: \"16:00\"\n", "    value: \"16:00\"\n    valeu: 3\n", "valeu"),
        ("  order_cutoff:\n    value: \"16:00\"\n    en: ['paid before (\\d{1,2}:\\d\\d)']\n"
         "    zh: ['(\\d{1,2}:\\d\\d)\\s*前付款']\n", "  order_cutoff:\n    value: \"16:00\"\n", "needs patterns"),
        ("  order_cutoff:\n    value: \"16:00\"\n", "  order_cutoff: 16\n  order_cut:\n    value: \"16:00\"\n",
         "must be a mapping"),
    ],
)
def test_a_malformed_policies_section_is_an_error_with_file_and_line(shop, capsys, old, new, problem):
    faq = shop / "data" / "faq.yml"
    changed = edit(faq, old, new)
    code, _, err = validate(shop, capsys)
    assert code == 1 and problem in err
    where = err.removeprefix("Error: ").split(": ")[0]
    assert where.startswith(f"{faq}:") and changed <= int(where.rsplit(":", 1)[1]) <= changed + 4, err


def test_a_policy_declared_in_two_files_is_an_error(shop, capsys):
    (shop / "data" / "more.yml").write_text(
        "faq: []\npolicies:\n  shipping_fee:\n    value: 10\n    en: ['flat ¥(\\d+)']\n", encoding="utf-8")
    code, _, err = validate(shop, capsys)
    first = line_of(shop / "data" / "faq.yml", "  shipping_fee:\n")
    assert code == 1 and f"{shop / 'data' / 'more.yml'}:3:" in err
    assert f"'shipping_fee' is declared twice (first at {shop / 'data' / 'faq.yml'}:{first})" in err


# -- FAQ display titles ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "problem"),
    [
        ('title: {en: "Cancelling an order"}', "'title' has no zh title, but the entry answers in en and zh"),
        ("title: Cancelling an order", "'title' must give a short title per language ({en: …, zh: …})"),
        ('title: {en: "Cancelling an order", zh: ""}', "'title' must give a short title per language"),
    ],
)
def test_a_title_missing_a_language_is_an_error_with_its_line(shop, capsys, title, problem):
    faq = shop / "data" / "faq.yml"
    changed = edit(faq, 'title: {en: "Cancelling an order", zh: "取消订单"}', title)
    code, _, err = validate(shop, capsys)
    assert code == 1 and f"{faq}:{changed}: FAQ 'cancel_order': {problem}" in err, err


def test_entries_without_titles_still_validate(shop, capsys):
    faq = shop / "data" / "faq.yml"
    edit(faq, '    title: {en: "Cancelling an order", zh: "取消订单"}\n', "")
    code, warnings, _ = validate(shop, capsys)
    assert code == 0 and warnings == []
