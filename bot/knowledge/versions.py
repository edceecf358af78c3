"""Versions of the live FAQ, kept in the key/value store (SQLite or Redis) so every worker reads the same ones.

    knowledge:head            {"version": N, "at": …}           the version workers serve
    knowledge:version:0000000N  {number, author, at, summary, based_on, changed, entries: [digest, …]}
    knowledge:entry:<digest>  one entry's content (FAQEntry.as_dict() + "disabled")

Entries are stored by the SHA-256 of their content, so a version is a list of digests and costs ~70 bytes per
entry: a thousand versions of the demo shop's 83 entries are ~6 MB, and an entry is stored once however many
versions keep it unchanged. A version number is claimed with a compare-and-set on its own key, so of two
editors publishing on the same version one wins and the other is told to reload (nothing is overwritten).
Rolling back publishes an older version's entries as a new version: history only grows.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from bot.formats.faq_data import FAQEntry
from bot.stores import KeyValue

HEAD = "knowledge:head"
VERSION = "knowledge:version:"
ENTRY = "knowledge:entry:"
ENTRY_FIELDS = ("id", "category", "tags", "questions", "answers", "titles")


class PublishConflict(RuntimeError):
    """Someone published another version since the one this change was based on: reload and redo it."""


@dataclass
class LiveEntry:
    """An FAQ entry as editors see it: a disabled entry is kept (and exported) but never answers."""

    entry: FAQEntry
    disabled: bool = False

    @property
    def id(self) -> str:
        return self.entry.id

    def as_dict(self) -> dict[str, Any]:
        return {**self.entry.as_dict(), "disabled": self.disabled}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LiveEntry:
        fields = {k: data[k] for k in ENTRY_FIELDS if k in data}
        return cls(FAQEntry(**fields, source="knowledge"), bool(data.get("disabled")))

    def digest(self) -> str:
        text = json.dumps(self.as_dict(), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class Version:
    number: int
    author: str
    at: float
    summary: str
    based_on: int
    changed: list[str] = field(default_factory=list)  # entry ids added, edited, disabled or deleted
    entries: list[LiveEntry] = field(default_factory=list)

    def meta(self) -> dict[str, Any]:
        return {"number": self.number, "author": self.author, "at": self.at, "summary": self.summary,
                "based_on": self.based_on, "changed": self.changed, "entries": len(self.entries)}

    def serving(self) -> list[FAQEntry]:
        """What the bot answers from: the enabled entries, in order."""
        return [e.entry for e in self.entries if not e.disabled]


def live_wins(published_at: float, trained_at: float) -> bool:
    """The newer wins: a version published after the model was trained is served, else the model's own FAQ."""
    return published_at > trained_at


def changed_ids(before: list[LiveEntry], after: list[LiveEntry]) -> list[str]:
    """Ids whose content differs between two entry lists (added, removed or edited), in `after`'s order first."""
    old = {e.id: e.digest() for e in before}
    new = {e.id: e.digest() for e in after}
    return [i for i in new if old.get(i) != new[i]] + [i for i in old if i not in new]


class KnowledgeVersions:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def head(self) -> int:
        """The newest published version's number; 0 when nothing was ever published (the model's own FAQ)."""
        doc = await self.kv.get(HEAD)
        return int(doc["version"]) if doc else 0

    async def head_at(self) -> tuple[int, float]:
        doc = await self.kv.get(HEAD)
        return (int(doc["version"]), float(doc["at"])) if doc else (0, 0.0)

    async def load(self, number: int) -> Version | None:
        doc = await self.kv.get(_version_key(number))
        if doc is None:
            return None
        entries = []
        for digest in doc["entries"]:
            data = await self.kv.get(ENTRY + digest)
            if data is None:
                raise RuntimeError(f"knowledge version {number} names entry {digest}, which is missing from the store")
            entries.append(LiveEntry.from_dict(data))
        return Version(doc["number"], doc["author"], doc["at"], doc["summary"], doc["based_on"],
                       list(doc.get("changed") or []), entries)

    async def history(self, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first, without the entries."""
        head = await self.head()
        found = []
        for number in range(head, max(0, head - limit), -1):
            doc = await self.kv.get(_version_key(number))
            if doc is not None:
                found.append({k: v for k, v in doc.items() if k != "entries"} | {"entries": len(doc["entries"])})
        return found

    async def publish(self, entries: list[LiveEntry], author: str, summary: str, based_on: int,
                      previous: list[LiveEntry] | None = None) -> Version:
        """Store `entries` as version `based_on + 1`; PublishConflict when that number is taken already."""
        ids = [e.id for e in entries]
        if len(set(ids)) != len(ids):
            raise ValueError("entry ids must be unique")
        version = Version(based_on + 1, author, time.time(), summary.strip() or "changes", based_on,
                          changed_ids(previous or [], entries) if previous is not None else ids, entries)
        for entry in entries:  # content-addressed: writing an existing one again changes nothing
            await self.kv.set(ENTRY + entry.digest(), entry.as_dict())
        doc = {**version.meta(), "entries": [e.digest() for e in entries]}
        if not await self.kv.cas(_version_key(version.number), None, doc):
            raise PublishConflict(f"version {version.number} was published by someone else meanwhile: reload the "
                                  "knowledge and make the change again")
        await self.kv.set(HEAD, {"version": version.number, "at": version.at})
        return version


def _version_key(number: int) -> str:
    return f"{VERSION}{number:08d}"
