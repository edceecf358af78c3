"""Long texts split for platforms that cap a message's length (WeChat in UTF-8 bytes, Messenger in characters)."""

from __future__ import annotations

from collections.abc import Callable


def split_text(text: str, limit: int, measure: Callable[[str], int] = len) -> list[str]:
    """Split a long text into parts of at most `limit` (as measured), preferring line breaks, then spaces."""
    text = text.strip()
    if measure(text) <= limit:
        return [text] if text else []
    parts: list[str] = []
    while text:
        if measure(text) <= limit:
            parts.append(text)
            break
        cut = _longest_prefix(text, limit, measure)
        for sep in ("\n\n", "\n", "。", ". ", " "):
            at = text.rfind(sep, 0, cut)
            if at > cut // 2:
                cut = at + len(sep)
                break
        parts.append(text[:cut].strip())
        text = text[cut:].strip()
    return [p for p in parts if p]


def _longest_prefix(text: str, limit: int, measure: Callable[[str], int]) -> int:
    lo, hi = 1, len(text)
    while lo < hi:  # the largest n with measure(text[:n]) <= limit (at least one character)
        mid = (lo + hi + 1) // 2
        if measure(text[:mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))
