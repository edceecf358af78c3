"""The layers stay apart (docs/design.md, "where things live"): the engine imports nothing above it, the human side
knows no NLU, and channels talk to the bot only through the agent interface. Checked on every import statement,
including those inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The engine: what understands and answers a message, with no idea of HTTP, channels or people.
ENGINE = ("bot.nlu", "bot.faq", "bot.dialogue", "bot.formats", "bot.stores", "bot.language", "bot.config",
          "bot.notices")
ABOVE_ENGINE = ("bot.agent", "bot.server", "bot.cli", "bot.channels", "bot.pages", "bot.app_keys", "bot.erasure",
                "handoff")
NLU = ("bot.nlu", "bot.faq", "bot.model", "bot.parsing")
# What a channel may use of the bot: the agent interface, the shopper-facing texts and the stores it keeps its own
# state in; never NLU, FAQ internals, the dialogue engine or the human side's internals.
CHANNEL_FORBIDDEN = (*NLU, "bot.dialogue.engine", "bot.dialogue.escalation", "bot.dialogue.policies",
                     "bot.dialogue.forms", "bot.dialogue.states", "handoff")


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def modules_under(*packages: str) -> list[Path]:
    paths = []
    for package in packages:
        base = ROOT / package.replace(".", "/")
        paths += sorted(base.rglob("*.py")) if base.is_dir() else [base.with_suffix(".py")]
    return [p for p in paths if p.exists()]


def violations(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return [f"{path.relative_to(ROOT)}:{line} imports {name}"
            for path in paths for line, name in imports_of(path)
            if any(name == f or name.startswith(f + ".") for f in forbidden)]


def test_the_engine_imports_nothing_above_it() -> None:
    assert violations(modules_under(*ENGINE), ABOVE_ENGINE) == []


def test_the_human_side_knows_no_nlu_and_no_channel() -> None:
    assert violations(modules_under("handoff"), (*NLU, "bot.channels", "bot.pages", "bot.agent")) == []


def test_channels_use_only_the_agent_interface() -> None:
    assert violations(modules_under("bot.channels"), CHANNEL_FORBIDDEN) == []


def test_the_agent_does_not_import_the_human_side() -> None:
    assert violations(modules_under("bot.agent"), ("handoff", "bot.channels")) == []


@pytest.mark.parametrize("rule", [ENGINE, CHANNEL_FORBIDDEN])
def test_the_checker_sees_imports_inside_functions(tmp_path: Path, rule: tuple[str, ...]) -> None:
    module = tmp_path / "m.py"
    module.write_text(f"def f():\n    from {rule[0]} import x\n", encoding="utf-8")
    assert imports_of(module) == [(2, rule[0]), (2, f"{rule[0]}.x")]
