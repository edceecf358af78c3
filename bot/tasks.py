"""Stopping a worker's background tasks without ever hanging its shutdown.

A cancellation can be lost inside a client library (redis-py shields its connection teardown and can swallow
the CancelledError that arrives meanwhile), and a loop that lost it runs on. Every background task of kefu is
stopped here: cancelled, waited for a bounded time, and named in a warning if it did not finish.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)
STOP_TIMEOUT_S = 5.0


async def stop(task: asyncio.Task[object] | None, timeout_s: float = STOP_TIMEOUT_S) -> None:
    if task is None or task.done():
        return
    task.cancel()
    await asyncio.wait({task}, timeout=timeout_s)
    if not task.done():
        log.warning("background task %s did not stop within %.0f s; left behind", task.get_name(), timeout_s)
