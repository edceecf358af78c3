"""One `kefu run` per SQLite store: the embedded store's conversation locks live in its process, so two servers
on one file would run two turns of one conversation at once (duplicated seqs are refused, but a turn is lost).

The lock is an flock on `<db>.serving` next to the file, never on the database itself: SQLite keeps its own
POSIX locks there, and closing any other descriptor of that file would drop them. An flock ends with its
process (kill -9 included), so no stale lock is ever left to clean up.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


class StoreInUse(RuntimeError):
    """Another process serves this SQLite store."""


def lock_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".serving")


@contextlib.contextmanager
def serving(db_path: Path) -> Iterator[None]:
    """Hold the store for serving; StoreInUse (one line, naming the other process) if another holds it."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path(db_path), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreInUse(f"another kefu{_pid_text(fd)} is already serving {db_path}: with the embedded SQLite "
                             "store only one `kefu run` may serve a file — stop it first, or set REDIS_URL to run "
                             "several workers") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the flock


def serving_pid(db_path: Path) -> int | None:
    """The pid of the process serving the store (0 if it did not say), or None when nobody serves it."""
    try:
        fd = os.open(lock_path(db_path), os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _pid(fd) or 0
        return None
    finally:
        os.close(fd)


def _pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None


def _pid_text(fd: int) -> str:
    pid = _pid(fd)
    return f" (pid {pid})" if pid else ""
