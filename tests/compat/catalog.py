"""The public Rasa 3.x bots of the compatibility suite, with what Rasa 3.6.21 scores on them (README.md).

Read by `test_compat.py` (kefu's pass count must equal Rasa's) and `benchmarks/compat_train.py` (training time
against Rasa's)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

BOTS_DIR = Path(os.environ.get("KEFU_COMPAT_BOTS") or Path(__file__).parent / "bots")


@dataclass(frozen=True)
class Bot:
    name: str
    stories: str  # what `rasa test --stories` is given, relative to the bot's folder
    total: int
    rasa: int  # stories Rasa 3.6.21 passes
    large: bool = False  # minutes of training: only with KEFU_COMPAT_LARGE=1


BOTS = [
    Bot("formbot", "tests", total=3, rasa=3),
    Bot("helpdesk-assistant", "tests", total=12, rasa=12),
    Bot("financial-demo", "tests", total=48, rasa=48),
    Bot("insurance-demo", "tests", total=6, rasa=6),
    Bot("retail-demo", "tests", total=9, rasa=9),
    Bot("carbon-bot", "test_stories/stories.yml", total=7, rasa=6, large=True),
    Bot("rasa-demo", "tests", total=25, rasa=25, large=True),
]
