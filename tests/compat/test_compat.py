"""Public Rasa 3.x bots move in unchanged: each trains with `kefu train` and passes as many of its own test
stories with `kefu test` as Rasa 3.6 passes with `rasa test` (tests/compat/README.md: the bots, where they come
from, their licences, and both counts).

The bots live in `tests/compat/bots/<name>/` (what `kefu train` and `kefu test` read, with the bot's LICENSE
and a SOURCE line); `$KEFU_COMPAT_BOTS` points the suite at another copy. A listed bot that is missing fails
its test. Small bots run in `make test`; the large ones (minutes of training each) with `KEFU_COMPAT_LARGE=1`.
Each bot is trained once per test session, in a copy outside the repository.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from bot.cli import main
from tests.compat.catalog import BOTS, BOTS_DIR, Bot


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """name -> a trained copy of that bot (trained on first use, once per session)."""
    cache: dict[str, Path] = {}

    def get(bot: Bot) -> Path:
        if bot.name not in cache:
            source = BOTS_DIR / bot.name
            if not (source / "domain.yml").is_file():
                pytest.fail(f"{bot.name} is not in {BOTS_DIR} (see tests/compat/README.md)")
            root = tmp_path_factory.mktemp(bot.name) / bot.name
            shutil.copytree(source, root, ignore=shutil.ignore_patterns("models", "results"))
            cwd = os.getcwd()
            os.chdir(root)
            try:
                assert main(["train"]) == 0, f"{bot.name} did not train"
            finally:
                os.chdir(cwd)
            cache[bot.name] = root
        return cache[bot.name]

    return get


@pytest.mark.parametrize("bot", [pytest.param(b, id=b.name, marks=pytest.mark.skipif(
    b.large and not os.environ.get("KEFU_COMPAT_LARGE"), reason="large bot: set KEFU_COMPAT_LARGE=1")) for b in BOTS])
def test_bot_passes_its_test_stories_as_in_rasa(bot, trained, monkeypatch):
    root = trained(bot)
    monkeypatch.chdir(root)
    fail = ["--fail-on-prediction-errors"] if bot.rasa == bot.total else []
    assert main(["test", "--stories", bot.stories, "--out", "results", *fail]) == 0
    report = json.loads((root / "results" / "story_report.json").read_text())
    assert report["conversations"] == bot.total
    assert report["passed"] == bot.rasa, report["failed_stories"]
