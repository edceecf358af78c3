"""Training time of the compatibility bots (tests/compat/bots/), kefu against Rasa 3.6, in one run.

    nice .venv/bin/python benchmarks/compat_train.py [--rasa /tmp/rasavenv/bin/rasa] [--bots formbot carbon-bot]
                                                     [--rasa-core carbon-bot rasa-demo]

For each bot, one after the other on a fresh copy: `kefu train --force`, `kefu test --stories …`, then
`rasa train` (or `rasa train core` for the bots named by --rasa-core: dialogue only, a lower bound on Rasa's
full training, for bots whose full training takes too long) and `rasa test core --stories …`. Prints a table —
seconds both, kefu/Rasa ratio, stories passed both — and whether kefu stays within a quarter of Rasa's time
(issue 13). Rasa 3.6 comes from ../shared/tools/rasa-peer/install.sh; without it only kefu is measured.

Rasa's copy differs from kefu's in one way: components needing a model Rasa would download (spaCy's
en_core_web_md, ConveRT) are taken out or replaced by WhitespaceTokenizer, as this machine cannot download.
Test stories carry their intents, so the dialogue pass counts do not depend on them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.compat.catalog import BOTS, BOTS_DIR, Bot  # noqa: E402

TARGET = 0.25  # issue 13: kefu's training within a quarter of Rasa's
DOWNLOADING = ("SpacyNLP", "SpacyEntityExtractor", "ConveRTFeaturizer")  # need a model download


def rasa_config(text: str) -> str:
    """config.yml as Rasa can run it offline: downloading components out, ConveRT's tokenizer → whitespace."""
    text = text.replace("name: ConveRTTokenizer", "name: WhitespaceTokenizer")
    for name in DOWNLOADING:
        text = re.sub(rf'^( *)- name: "?{name}"?\n(?:\1 +\S.*\n)*', "", text, flags=re.MULTILINE)
    return text


def timed(command: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.run(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env).returncode
    if code != 0:
        raise SystemExit(f"{' '.join(command)} failed in {cwd} (exit {code}); see {log}")
    return time.perf_counter() - started


def run_kefu(bot: Bot, work: Path) -> tuple[float, int]:
    root = work / f"kefu-{bot.name}"
    shutil.copytree(BOTS_DIR / bot.name, root)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    kefu = [sys.executable, "-m", "bot.cli"]
    seconds = timed([*kefu, "train", "--force"], root, root / "train.log", env)
    timed([*kefu, "test", "--stories", bot.stories, "--out", "results"], root, root / "test.log", env)
    return seconds, json.loads((root / "results" / "story_report.json").read_text())["passed"]


def run_rasa(bot: Bot, work: Path, rasa: str, core_only: bool) -> tuple[float, int]:
    root = work / f"rasa-{bot.name}"
    shutil.copytree(BOTS_DIR / bot.name, root)
    (root / "config.yml").write_text(rasa_config((root / "config.yml").read_text()))
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "3"}
    seconds = timed([rasa, "train", *(["core"] if core_only else [])], root, root / "train.log", env)
    timed([rasa, "test", "core", "--stories", bot.stories, "--out", "results"], root, root / "test.log", env)
    found = re.search(r"Correct:\s+(\d+) / \d+", (root / "test.log").read_text())  # the first: whole stories
    if found is None:
        raise SystemExit(f"no story count in {root / 'test.log'}")
    return seconds, int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rasa", default="/tmp/rasavenv/bin/rasa", help="Rasa 3.6's `rasa` command")
    parser.add_argument("--bots", nargs="+", default=[b.name for b in BOTS], help="which bots (default: all)")
    parser.add_argument("--rasa-core", nargs="*", default=["carbon-bot", "rasa-demo"],
                        help="bots Rasa trains dialogue only for (`rasa train core`)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the copies and logs in this folder")
    args = parser.parse_args()
    unknown = set(args.bots) - {b.name for b in BOTS}
    if unknown:
        parser.error(f"unknown bots: {', '.join(sorted(unknown))}")
    rasa = args.rasa if Path(args.rasa).exists() else None
    if rasa is None:
        print(f"{args.rasa} not found: measuring kefu only (install Rasa with ../shared/tools/rasa-peer/install.sh)")

    work = Path(tempfile.mkdtemp(prefix="compat-train-", dir=args.keep))
    print(f"{'bot':20} {'kefu s':>7} {'rasa s':>10} {'ratio':>6}  {'kefu passes':>11}  {'rasa passes':>11}  target")
    missed = []
    for bot in (b for b in BOTS if b.name in args.bots):
        kefu_s, kefu_passed = run_kefu(bot, work)
        line = f"{bot.name:20} {kefu_s:7.1f} "
        if rasa:
            core = bot.name in args.rasa_core
            rasa_s, rasa_passed = run_rasa(bot, work, rasa, core)
            ratio = kefu_s / rasa_s
            missed += [bot.name] if ratio > TARGET else []
            line += (f"{rasa_s:7.1f}{' c' if core else '  '} {ratio:6.2f}  {kefu_passed:>5}/{bot.total:<5}  "
                     f"{rasa_passed:>5}/{bot.total:<5}  {'ok' if ratio <= TARGET else 'MISSED'}")
        else:
            line += f"{'-':>10} {'-':>6}  {kefu_passed:>5}/{bot.total:<5}"
        print(line, flush=True)
    if rasa:
        print("c: `rasa train core` (dialogue only). Target: kefu's training ≤ 1/4 of Rasa's on every bot: "
              + ("met." if not missed else f"missed on {', '.join(missed)}."))
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
