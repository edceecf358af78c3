"""`kefu backup` / `kefu restore` for the embedded store, with SQLite's online backup API.

A backup is a consistent snapshot taken while the server keeps writing (a WAL reader does not stop writers): one
self-contained SQLite file, written under a temporary name, checked, fsynced and renamed, so a backup file is
either whole or absent. A restore copies a checked backup into the store through the same API, holding the
store's serving lock, so no `kefu run` serves the file meanwhile (and a running one makes it refuse).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bot.durable import fsync_path
from bot.stores.serving_lock import serving

KEFU_TABLES = {"events", "conversations", "conversation_meta", "kv"}


class BackupError(RuntimeError):
    """The store or the backup file is missing, not a kefu store, or damaged."""


@dataclass(frozen=True)
class Contents:
    conversations: int
    events: int
    documents: int
    size: int

    def __str__(self) -> str:
        return (f"{self.conversations} conversations, {self.events} events, {self.documents} documents, "
                f"{self.size / 1e6:.1f} MB")


def contents(path: Path) -> Contents:
    """What a kefu SQLite file holds; BackupError if it is not a sound kefu store."""
    if not path.is_file():
        raise BackupError(f"no SQLite store at {path}")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables >= KEFU_TABLES:
                raise BackupError(f"{path} is not a kefu store (tables {', '.join(sorted(tables)) or 'none'})")
            check = conn.execute("PRAGMA integrity_check").fetchall()
            if check != [("ok",)]:
                raise BackupError(f"{path} is damaged: {'; '.join(str(row[0]) for row in check[:3])}")
            counts = [conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                      for table in ("conversations", "events", "kv")]
            return Contents(*counts, path.stat().st_size)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a readable SQLite file: {exc}") from None


def backup(db_path: Path, target: Path) -> Contents:
    """Copy the live store at db_path into target (replaced whole, never left half-written)."""
    if not db_path.is_file():
        raise BackupError(f"no SQLite store at {db_path}: nothing to back up")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(fd)
    try:
        with contextlib.closing(sqlite3.connect(db_path, timeout=30)) as source, \
                contextlib.closing(sqlite3.connect(partial)) as copy:
            source.backup(copy)  # all pages in one step: one read snapshot, however busy the writer
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        saved = contents(Path(partial))
        fsync_path(Path(partial))
        os.replace(partial, target)
        fsync_path(target.parent)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return Contents(saved.conversations, saved.events, saved.documents, target.stat().st_size)


def restore(backup_file: Path, db_path: Path) -> Contents:
    """Replace the store at db_path with a backup's contents; StoreInUse while a server serves it."""
    saved = contents(backup_file)  # a damaged or foreign file is refused before anything is touched
    with serving(db_path), contextlib.closing(sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)) as source, \
            contextlib.closing(sqlite3.connect(db_path, timeout=30)) as store:
        source.backup(store)
        store.execute("PRAGMA journal_mode=WAL")
    return saved

