"""Split a message that asks several things into its questions: "几天到，运费多少" → ["几天到", "运费多少"].

Shoppers separate their questions with question marks, semicolons, line breaks, and words such as "还有",
"另外", "also", "and what about". A comma alone separates two questions in Chinese more often than in English,
so it splits only when both sides look like questions of their own (long enough to be one). The pieces are
searched one by one; the bot answers each piece it is sure of, so one message gets every answer it asked for.
"""

from __future__ import annotations

import re

from bot.language import HAN_CHARS

# Always a boundary: end of a question or sentence, a semicolon, a line break.
_HARD = re.compile(r"(?<=[?？!！;；。\n])\s*|\s*\n\s*")
# A boundary when both sides are long enough: words that start another question.
_JOINERS = re.compile(
    r"\s*[,，、]?\s*(?:还有(?:就是)?|另外|顺便问(?:一?下)?|再问(?:一?下)?|以及|然后)\s*[,，:：]?\s*"
    r"|\s*[,;]?\s+(?:and also|also|and what about|what about|and how about|plus|btw|by the way|another question)"
    r"\b\s*[,:]?\s*",
    re.IGNORECASE,
)
# A comma: in Chinese between two clauses; in English only before a new question ("…, how much is it").
_COMMA = re.compile(
    r"\s*，\s*|\s*,\s*(?=(?:and\s+)?(?:how|what|when|where|which|why|who|can|could|do|does|did|is|are|will|would"
    r"|should|any)\b)",
    re.IGNORECASE,
)
_LEADING_JOINER = re.compile(
    r"^(?:还有(?:就是)?|另外|顺便问(?:一?下)?|以及|然后|(?:and also|also|and|plus|btw)\b)\s*[,，:：]?\s*",
    re.IGNORECASE,
)
_CONTENT = re.compile(f"[{HAN_CHARS}]|[A-Za-z0-9]+")
MIN_UNITS = 3  # a question has at least this many Han characters or words
MAX_PARTS = 4


def _units(text: str) -> int:
    return len(_CONTENT.findall(text))


def _split_keep(pieces: list[str], pattern: re.Pattern[str]) -> list[str]:
    """Split each piece on `pattern` where both sides keep at least MIN_UNITS; otherwise leave it whole."""
    out: list[str] = []
    for piece in pieces:
        parts = [p for p in pattern.split(piece) if p and p.strip()]
        if len(parts) > 1 and all(_units(p) >= MIN_UNITS for p in parts):
            out += parts
        else:
            out.append(piece)
    return out


def split_questions(text: str) -> list[str]:
    """The questions a message asks, in order; `[text]` when it asks one (or the split would be guesswork)."""
    pieces = [p.strip() for p in _HARD.split(text) if p and p.strip()]
    pieces = [p for p in pieces if _units(p) > 0]
    pieces = _split_keep(pieces, _JOINERS)
    pieces = _split_keep(pieces, _COMMA)
    questions = [_LEADING_JOINER.sub("", p.strip(" ,，、.。")) for p in pieces if _units(p) >= MIN_UNITS]
    if len(questions) < 2 or len(questions) > MAX_PARTS:
        return [text]
    return questions
