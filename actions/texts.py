"""Small helpers for the actions' bilingual messages."""

from __future__ import annotations

from typing import Any


def bi(language: str, *, zh: str, en: str) -> str:
    """The message in the shopper's language (zh, else English)."""
    return zh if language == "zh" else en


def say(value: Any, language: str) -> str:
    """A bilingual field ({"en": …, "zh": …}) or a plain string, in `language`."""
    if isinstance(value, dict):
        return str(value.get(language) or value.get("en") or next(iter(value.values()), ""))
    return "" if value is None else str(value)


def items_text(items: list[dict[str, Any]], language: str) -> str:
    """"天蓝色陶瓷马克杯 ×2、竹制杯垫套装 ×1" / "2 × Ceramic mug; 1 × Bamboo coaster set"."""
    if language == "zh":
        return "、".join(f"{say(i.get('name'), 'zh')} ×{i.get('qty', 1)}" for i in items)
    return "; ".join(f"{i.get('qty', 1)} × {say(i.get('name'), 'en')}" for i in items)
