"""Uploads are kept `upload_retention_days`, then removed: their file, their record and their share of the
conversation's quota. Without this the upload folder only grows.

Each worker sweeps at start-up and then every SWEEP_EVERY_S. Several workers may sweep at once: a record is
removed by compare-and-set, so only the worker that removed it gives the quota back. Files left without a
record (a worker killed mid-upload leaves a `.att_….part`) go too once they are as old.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from bot.channels.widget.uploads import KEY_PREFIX, UploadStore

log = logging.getLogger(__name__)

SWEEP_EVERY_S = 3600.0
OURS = re.compile(r"^\.?att_[A-Za-z0-9_-]{16,64}(\.part)?$")  # never anything else, whatever upload_dir is


async def remove_expired(uploads: UploadStore, max_age_s: float, now: float | None = None) -> int:
    """Remove the uploads older than max_age_s; returns how many files were removed."""
    cutoff = (time.time() if now is None else now) - max_age_s
    loop = asyncio.get_running_loop()
    removed, kept = 0, set()
    for key, doc in await uploads.kv.scan(KEY_PREFIX):
        attachment_id = key.removeprefix(KEY_PREFIX)
        if float(doc.get("created_at", 0)) >= cutoff:
            kept.add(attachment_id)
            continue
        if await uploads.kv.cas(key, doc, None):  # only one worker wins the record, and gives the quota back
            await loop.run_in_executor(None, _unlink, uploads.path(attachment_id))
            await uploads.quota.give_back(str(doc.get("conversation_id", "")), int(doc.get("size", 0)))
            removed += 1
    removed += await loop.run_in_executor(None, _remove_strays, uploads.directory, kept, cutoff)
    if removed:
        log.info("removed %d uploads older than %.0f days", removed, max_age_s / 86400)
    return removed


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _remove_strays(directory: Path, kept: set[str], cutoff: float) -> int:
    """Our files older than the cutoff that no record names (half-written uploads of a killed worker)."""
    removed = 0
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            if (OURS.match(entry.name) and entry.name not in kept and entry.is_file()
                    and entry.stat().st_mtime < cutoff):
                _unlink(Path(entry.path))
                removed += 1
    return removed


async def sweep_forever(uploads: UploadStore, max_age_s: float, every_s: float = SWEEP_EVERY_S,
                        now: Callable[[], float] = time.time) -> None:
    """At once, then every `every_s`, until cancelled; a failed sweep is logged and tried again later."""
    while True:
        try:
            await remove_expired(uploads, max_age_s, now())
        except Exception:
            log.exception("removing old uploads failed; trying again in %.0f s", every_s)
        await asyncio.sleep(every_s)
