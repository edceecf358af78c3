"""The handoff's rules without a server: settings, business hours, routing, wait estimates, what shoppers read,
how their short answers are understood, canned replies and passwords. Fast: no model (one test uses a SQLite
key/value store)."""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.dialogue import events as ev
from bot.dialogue.tracker import Tracker
from bot.formats.yaml_io import DataError
from bot.notices import describe, format_opening, needs_language
from handoff import routing, shopper
from handoff.agents import hash_password, verify_password
from handoff.canned import CannedReplies
from handoff.hours import BusinessHours
from handoff.records import HandoffRecord
from handoff.routing import OnDuty
from handoff.settings import HandoffSettings, load_settings

ROOT = Path(__file__).resolve().parent.parent
SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(zone: ZoneInfo, *args: int) -> float:
    return datetime(*args, tzinfo=zone).timestamp()


# -- settings --------------------------------------------------------------------------------------------------


def test_the_projects_handoff_yml_is_valid():
    settings = load_settings(ROOT / "handoff.yml")
    assert settings.timezone == "Asia/Shanghai"
    assert [p.name for p in settings.priorities] == ["vip", "complaint", "normal"]
    assert set(settings.groups) >= {"returns", "payment"}


def test_hours_accept_days_ranges_lists_closed_and_24h():
    week = HandoffSettings(hours={"mon-fri": "09:00-18:00", "sat": ["10:00-12:00", "14:00-17:30"], "sunday": "closed",
                                  "wed": "24h"}).week
    assert [f"{s:%H:%M}" for s, _ in week["sat"]] == ["10:00", "14:00"]
    assert week["sun"] == [] and week["wed"][0][1] is None and len(week["thu"]) == 1


@pytest.mark.parametrize("text, message", [
    ("hours:\n  mon: 9-17\n", "09:00-21:00"),
    ("hours:\n  funday: 09:00-17:00\n", "not a weekday"),
    ("hours:\n  mon: 18:00-09:00\n", "after the start"),
    ("timezone: Mars/Olympus\n", "unknown time zone"),
    ("no_answer_timeout_s: -1\n", "greater than 0"),
    ("surprise: 1\n", "Extra inputs"),
])
def test_bad_settings_say_what_and_where(tmp_path: Path, text: str, message: str):
    path = tmp_path / "handoff.yml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(DataError) as error:
        load_settings(path)
    assert message in str(error.value) and "handoff.yml:" in str(error.value)


# -- business hours --------------------------------------------------------------------------------------------


def test_open_and_next_opening_in_the_shops_time_zone():
    hours = BusinessHours(HandoffSettings(timezone="Asia/Shanghai", hours={"mon-fri": "09:00-21:00",
                                                                         "weekend": "closed"}))
    friday_night = at(SHANGHAI, 2026, 11, 27, 22, 30)  # a Friday, 22:30 in Shanghai (14:30 UTC)
    assert not hours.is_open(friday_night)
    assert hours.next_open(friday_night) == datetime(2026, 11, 30, 9, 0, tzinfo=SHANGHAI)  # Monday
    assert hours.is_open(at(SHANGHAI, 2026, 11, 27, 20, 59))
    assert not hours.is_open(at(SHANGHAI, 2026, 11, 27, 21, 0))
    # open now: the next opening is the next shift, which nobody is told while the team is on duty
    assert hours.next_open(at(SHANGHAI, 2026, 11, 26, 10, 0)) == datetime(2026, 11, 27, 9, 0, tzinfo=SHANGHAI)


def test_closed_dates_and_daylight_saving_time():
    berlin = ZoneInfo("Europe/Berlin")
    hours = BusinessHours(HandoffSettings(timezone="Europe/Berlin", hours={"daily": "08:00-16:00"},
                                          closed_dates=["2026-03-30"]))
    # clocks go forward on 2026-03-29: 08:00 local is 06:00 UTC from then on
    assert hours.is_open(datetime(2026, 3, 29, 6, 30, tzinfo=ZoneInfo("UTC")).timestamp())
    assert not hours.is_open(datetime(2026, 3, 28, 6, 30, tzinfo=ZoneInfo("UTC")).timestamp())
    assert hours.next_open(at(berlin, 2026, 3, 29, 17, 0)) == datetime(2026, 3, 31, 8, 0, tzinfo=berlin)
    assert BusinessHours(HandoffSettings(hours={"daily": "closed"})).next_open(at(SHANGHAI, 2026, 1, 1, 0, 0)) is None


# -- routing ---------------------------------------------------------------------------------------------------


def record(cid: str, rank: int = 2, at_s: float = 0.0, language: str = "zh", group: str | None = None,
           transferred_from: list[str] | None = None) -> HandoffRecord:
    return HandoffRecord(cid, "queued", ["vip", "complaint", "normal"][rank], rank, "explicit_request", language,
                         "rest", group, at_s, at_s, at_s, transferred_from=transferred_from or [])


def duty(name: str, status: str = "online", languages: tuple[str, ...] = ("zh", "en"), groups: tuple[str, ...] = (),
         capacity: int = 2, load: int = 0) -> OnDuty:
    return OnDuty(name, name, status, list(languages), list(groups), capacity, load)


def test_priority_classes_from_tier_slot_and_reason():
    settings = HandoffSettings()
    assert routing.priority_of(settings, "explicit_request", "Gold", {}) == ("vip", 0)
    assert routing.priority_of(settings, "explicit_request", None, {"vip": True}) == ("vip", 0)
    assert routing.priority_of(settings, "complaint", None, {}) == ("complaint", 1)
    assert routing.priority_of(settings, "low_faq_score", None, {"vip": None}) == ("normal", 2)


def test_group_from_the_top_candidate_category_or_intent():
    settings = HandoffSettings()
    faq = [{"kind": "faq", "id": "refund_time", "score": 0.4}]
    assert routing.group_of(settings, "low_faq_score", faq, {"refund_time": "returns"}) == "returns"
    assert routing.group_of(settings, "x", [{"kind": "intent", "id": "order_status"}], {}) == "shipping"
    assert routing.group_of(settings, "explicit_request", [], {}) is None


def test_plan_serves_priority_first_then_first_come_and_respects_everything():
    waiting = sorted([record("normal-early", 2, 1), record("vip-late", 0, 5), record("en", 2, 2, language="en"),
                      record("returns", 2, 3, group="returns")], key=lambda r: r.order)
    agents = [duty("zh-busy", languages=("zh",), capacity=1, load=1), duty("zh-free", languages=("zh",), capacity=1),
              duty("away", status="away"), duty("returns-agent", languages=("zh",), groups=("returns",))]
    plan = {r.conversation_id: a.username for r, a in routing.plan(waiting, agents, now=10, overflow_after_s=100)}
    # vip first; the English shopper waits (nobody online speaks English); groups are kept
    assert plan == {"vip-late": "zh-free", "normal-early": "returns-agent", "returns": "returns-agent"}


def test_least_loaded_agent_wins_and_groups_overflow_after_a_while():
    agents = [duty("a", load=1, capacity=4), duty("b", load=0, capacity=4, groups=("payment",))]
    assert routing.plan([record("x")], agents, 0, 60)[0][1].username == "b"  # no group: anyone
    held = record("y", group="returns")
    assert routing.plan([held], [duty("pay", groups=("payment",))], now=10, overflow_after_s=60) == []
    assert routing.plan([held], [duty("pay", groups=("payment",))], now=61, overflow_after_s=60)[0][1].username == "pay"


def test_a_transfer_does_not_bounce_back():
    moved = record("t", transferred_from=["li"])
    assert routing.plan([moved], [duty("li")], 0, 60) == []
    assert routing.plan([moved], [duty("li"), duty("wang", load=1)], 0, 60)[0][1].username == "wang"


def test_wait_estimate_from_handling_time_and_slots_online():
    online = [duty("a", capacity=3), duty("b", capacity=3), duty("c", status="away")]
    assert routing.eta_s(6, online, handling_s=300) == 300  # 6 × 300 / 6 slots
    assert routing.eta_s(1, online, handling_s=300) == 60  # never "0 minutes"
    assert routing.eta_s(2, [duty("c", status="away")], handling_s=300) == 600
    # nobody online or away: no wait to estimate until someone logs in
    assert routing.eta_s(1, [duty("c", status="offline")], handling_s=300) is None
    assert routing.eta_s(1, [], handling_s=300) is None


async def test_handling_time_average_keeps_the_recent_ones(tmp_path: Path):
    from bot.stores import create_stores
    from handoff.handling import HandlingTimes

    stores = create_stores(None, tmp_path / "kv.db")
    try:
        handling = HandlingTimes(stores.kv, keep=2, default_s=300)
        assert await handling.average() == 300  # nothing closed yet
        for seconds in (1000, 100, 200):
            await handling.add(seconds)
        assert await handling.average() == 150  # the oldest fell out
    finally:
        await stores.close()


# -- what shoppers read ---------------------------------------------------------------------------------------


def test_describe_in_both_languages():
    queued = {"event": ev.QUEUED, "position": 2, "eta_s": 180}
    assert describe(queued, "en").startswith("You are number 2 in line, about 3 min")
    assert describe(queued, "zh").startswith("您当前排在第 2 位，预计等待约 3 分钟")
    assert "Li" in describe({"event": ev.AGENT_ASSIGNED, "agent": "li", "agent_name": "Li"}, "en")
    assert "T1001" in describe({"event": ev.TICKET_CREATED, "ticket_id": "T1001"}, "zh")
    assert describe({"event": ev.HANDOFF_ENDED, "resolution": "resolved"}, "zh")
    for kind in (ev.AGENT_NOTE, ev.AGENT_MESSAGE, ev.HANDOFF_REQUESTED, ev.CSAT, "bot", "user"):
        assert describe({"event": kind, "text": "x"}, "en") is None


def test_next_opening_is_said_the_shoppers_way():
    friday = at(SHANGHAI, 2026, 11, 27, 22, 0)
    event = {"event": ev.HANDOFF_UNAVAILABLE, "reason": "closed", "next_open": "2026-11-28T09:00:00+08:00",
             "timezone": "Asia/Shanghai", "timestamp": friday}
    assert "明天 09:00（北京时间）恢复服务" in describe(event, "zh")
    assert "tomorrow at 09:00 (Asia/Shanghai)" in describe(event, "en")
    assert format_opening("2026-11-30T09:00:00+08:00", "Asia/Shanghai", "en", friday) == \
        "Mon Nov 30 at 09:00 (Asia/Shanghai)"
    assert "稍后" in describe({**event, "next_open": None}, "zh")


def test_nobody_online_in_hours_is_told_without_a_next_shift():
    queued = {"event": ev.QUEUED, "position": 1, "eta_s": None, "nobody_online": True}
    for language, online, wait, leave in (("en", "Nobody from our team is online right now", "number 1 in line",
                                           '"leave a message"'),
                                          ("zh", "现在暂时没有人工客服在线", "排在第 1 位", "“留言”")):
        said = describe(queued, language)
        assert online in said and wait in said and leave in said
        assert not any(w in said for w in ("tomorrow", "明天", "next shift", "下一班", "min", "分钟"))
    timeout = describe({"event": ev.HANDOFF_UNAVAILABLE, "reason": "timeout", "next_open": None}, "en")
    assert "leave a message" in timeout and "back" not in timeout


@pytest.mark.parametrize("text, score", [
    ('/csat{"score": 4}', 4), ("5", 5), ("5 stars", 5), ("五星", 5), ("3分", 3), ("两星", 2), (" 1 ! ", 1),
    ("6", None), ("/csat{\"score\": 9}", None), ("55", None), ("5 orders", None), ("hello", None),
    ("五顆星", 5), ("兩星", 2),  # traditional characters
])
def test_ratings_are_understood(text: str, score: int | None):
    assert shopper.rating_score(text) == score


@pytest.mark.parametrize("text, cancel", [
    ("/cancel_handoff", True), ("cancel", True), ("Never mind!", True), ("取消", True), ("不用了。", True),
    ("取消订单", False), ("cancel my order", False), ("转人工", False),
    ("取消轉人工", True), ("不用了，謝謝", False), ("取消訂單", False),  # traditional characters
])
def test_cancel_is_only_a_cancel(text: str, cancel: bool):
    assert shopper.is_cancel(text) is cancel


def test_ticket_questions():
    asked = ["/ticket_status", "what about my ticket?", "工单进度", "我的留言", "工單進度"]
    assert all(shopper.asks_ticket_status(t) for t in asked)
    assert not any(shopper.asks_ticket_status(t) for t in ["运费多少钱", "how long is shipping"])


def test_rating_pending_only_until_the_shopper_writes():
    request = shopper.rating_request("en")
    assert [b["title"] for b in request["data"]["buttons"]] == ["★", "★★", "★★★", "★★★★", "★★★★★"]
    tracker = Tracker.from_events("x", [ev.user("hi"), request])
    assert shopper.rating_pending(tracker)
    tracker.apply(ev.user("what?"))
    assert not shopper.rating_pending(tracker)


def test_unavailable_waits_for_one_message():
    unavailable = {"event": ev.HANDOFF_UNAVAILABLE, "reason": "offline"}
    tracker = Tracker.from_events("x", [ev.user("转人工"), unavailable])
    assert shopper.unavailable_pending(tracker) == unavailable
    tracker.apply(ev.user("please call me"))
    assert shopper.unavailable_pending(tracker) is None


@pytest.mark.parametrize("text, choice", [
    ("/leave_message", (True, "")), ('/leave_message{"text": "call me"}', (True, "call me")),
    ("leave a message", (True, "")), ("Leave a message!", (True, "")), ("I'd like to leave a message", (True, "")),
    ("leave a message: please call me", (True, "please call me")), ("留言", (True, "")), ("我要留言。", (True, "")),
    ("给客服留个言吧", (True, "")), ("留言：订单还没到", (True, "订单还没到")),
    ("留言，订单还没到", (True, "订单还没到")),
    ("留言多久回复", (False, "")), ("how do I leave feedback", (False, "")), ("运费多少钱", (False, "")),
    ("cancel", (False, "")),
    ("給客服留個言吧", (True, "")), ("留言：張單寄錯咗顏色", (True, "張單寄錯咗顏色")),  # kept as written
])
def test_leaving_a_message_is_an_explicit_choice(text: str, choice: tuple[bool, str]):
    assert shopper.leave_message(text) == choice


def test_the_offer_to_leave_a_message_stands_until_taken_or_declined():
    unavailable = {"event": ev.HANDOFF_UNAVAILABLE, "reason": "closed"}
    tracker = Tracker.from_events("x", [ev.user("转人工"), unavailable, ev.user("运费多少钱"), ev.bot("10 元")])
    assert shopper.message_offer(tracker) == unavailable  # a question for the bot in between
    tracker.apply(shopper.message_request("zh", "closed"))
    assert shopper.message_pending(tracker) == "closed"
    tracker.apply(ev.user("我的订单还没到"))
    assert shopper.message_pending(tracker) is None
    tracker.apply({"event": ev.TICKET_CREATED, "ticket_id": "T1001"})
    assert shopper.message_offer(tracker) is None
    declined = Tracker.from_events("y", [unavailable, ev.user("cancel"), {"event": ev.HANDOFF_CANCELLED}])
    assert shopper.message_offer(declined) is None


# -- canned replies and passwords -----------------------------------------------------------------------------


def test_canned_replies_file_and_search():
    canned = CannedReplies.load(ROOT / "data" / "canned_replies.yml")
    assert len(canned.replies) >= 8 and all(r.zh and r.en for r in canned.replies)
    first = canned.search("ret", "zh")[0]
    assert first.shortcut == "return-how" and "退货" in first.text
    assert canned.search("refund", "en")[0].language == "en"
    assert {m.shortcut for m in canned.search("发票", "en")} == {"invoice"}  # found by its Chinese words too


def test_canned_reply_mistakes_are_reported_with_a_line(tmp_path: Path):
    path = tmp_path / "canned.yml"
    path.write_text("canned_replies:\n  - {shortcut: a, zh: 好, en: ok}\n  - {shortcut: a, zh: 好, en: ok}\n")
    with pytest.raises(DataError, match="duplicate shortcut /a"):
        CannedReplies.load(path)
    path.write_text("canned_replies:\n  - {shortcut: b, zh: 好}\n")
    with pytest.raises(DataError, match="en"):
        CannedReplies.load(path)


def test_passwords_are_salted_scrypt_hashes():
    stored = hash_password("correct horse")
    assert stored.startswith("scrypt$") and "correct" not in stored
    assert stored != hash_password("correct horse")
    assert verify_password("correct horse", stored) and not verify_password("wrong", stored)
    assert not verify_password("x", "md5$abc")


def test_kefu_agents_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    import asyncio
    import io

    from bot.cli import main
    from bot.stores import create_stores
    from handoff.agents import AgentDirectory

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO("first-password\n"))
    assert main(["agents", "add", "li", "--password-stdin", "--languages", "zh", "--groups", "returns,payment",
                 "--capacity", "4", "--display-name", "小李"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("another-password\n"))
    assert main(["agents", "add", "li", "--password-stdin"]) == 1  # taken
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["agents", "add", "wang", "--password-stdin"]) == 1  # too short
    monkeypatch.setattr("sys.stdin", io.StringIO("second-password\n"))
    assert main(["agents", "passwd", "li", "--password-stdin"]) == 0
    assert main(["agents", "list"]) == 0
    out = capsys.readouterr()
    assert "li" in out.out and "returns,payment" in out.out and "at least 8" in out.err

    async def check() -> None:
        stores = create_stores(None, tmp_path / "kefu.db")
        directory = AgentDirectory(stores.kv)
        account = await directory.authenticate("li", "second-password")
        assert account is not None and (account.name, account.languages, account.capacity) == ("小李", ["zh"], 4)
        await stores.close()

    asyncio.run(check())
    assert main(["agents", "remove", "li"]) == 0 and main(["agents", "remove", "li"]) == 1


def test_only_a_notice_without_its_own_language_needs_the_conversations():
    """A channel looks the conversation's language up only to describe a handoff notice that carries none."""
    answer = [ev.user("hi", {}), ev.bot("Hello!", {}, "utter_greet")]
    assert not needs_language(answer)
    queued = {"event": ev.QUEUED, "position": 2, "eta_s": 120}
    assert needs_language([*answer, queued])
    assert not needs_language([*answer, {**queued, "language": "zh"}])
    assert describe({**queued, "language": "zh"}, "en") != describe(queued, "en")  # its own language wins
