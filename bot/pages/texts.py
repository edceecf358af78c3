"""The help centre's words in both languages (texts.yml): its own, and the names of the FAQ's categories."""

from __future__ import annotations

from pathlib import Path

import yaml

_TEXTS = yaml.safe_load((Path(__file__).with_name("texts.yml")).read_text(encoding="utf-8"))


def text(key: str, language: str, **values: object) -> str:
    """A help-centre text in `language` ("zh" or "en"), with `{name}` fields filled in."""
    return _TEXTS["help"][key][language].format(**values)


def category_label(category: str, language: str) -> str:
    """How the help centre names an FAQ category ("shipping" → "配送与运费" / "Shipping & delivery")."""
    known = _TEXTS["categories"].get(category)
    if known:
        return known[language]
    return category.replace("_", " ").capitalize() if category else ("其他" if language == "zh" else "Other")
