"""Canned replies: short answers agents insert with a `/shortcut`, kept in data/canned_replies.yml (zh + en)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bot.formats.yaml_io import DataError, line_of, load_yaml, validate


class CannedReply(BaseModel):
    model_config = ConfigDict(extra="forbid")
    shortcut: str = Field(pattern=r"^[\w-]{1,40}$")
    title: dict[str, str] = {}
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str | None = None
    canned_replies: list[CannedReply] = []


@dataclass
class Match:
    shortcut: str
    title: str
    text: str
    language: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class CannedReplies:
    def __init__(self, replies: list[CannedReply]) -> None:
        self.replies = replies

    @classmethod
    def load(cls, path: str | Path) -> CannedReplies:
        """The file's replies; none when there is no file. Duplicate shortcuts are an error with a line."""
        path = Path(path)
        if not path.exists():
            return cls([])
        raw = load_yaml(path) or {}
        parsed = validate(_File, raw, path)
        seen: set[str] = set()
        for i, reply in enumerate(parsed.canned_replies):
            if reply.shortcut in seen:
                raise DataError(f"duplicate shortcut /{reply.shortcut}", path, line_of(raw["canned_replies"][i]))
            seen.add(reply.shortcut)
        return cls(parsed.canned_replies)

    def search(self, query: str = "", language: str = "en", limit: int = 20) -> list[Match]:
        """Shortcut prefix matches first, then replies whose title or text contains the query (any language)."""
        query = query.strip().lstrip("/").lower()
        language = "zh" if language == "zh" else "en"

        def match(reply: CannedReply) -> Match:
            title = reply.title.get(language) or reply.title.get("en") or reply.shortcut
            return Match(reply.shortcut, title, getattr(reply, language), language)

        first = [r for r in self.replies if r.shortcut.lower().startswith(query)]
        rest = [r for r in self.replies if r not in first and query in
                " ".join([r.zh, r.en, *r.title.values()]).lower()]
        return [match(r) for r in [*first, *rest][:limit]]
