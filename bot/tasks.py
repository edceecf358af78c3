"""Stopping a worker's background tasks without ever hanging its shutdown.

A cancellation can be lost inside a client library: on Python 3.11 `asyncio.wait_for` returns the result when
the awaited call finished just as the cancellation came (aioimaplib wraps every IMAP command in it), and
redis-py shields its connection teardown and can swallow the CancelledError that arrives meanwhile. A loop that
lost it runs on. Every background task of kefu is stopped here: cancelled, cancelled again while it still runs,
waited for a bounded time, and named in a warning if it did not finish.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)
STOP_TIMEOUT_S = 5.0
RECANCEL_S = 0.5  # a task still running this long after its cancellation has lost it


async def stop(*tasks: asyncio.Task[object] | None, timeout_s: float = STOP_TIMEOUT_S) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    pending = {task for task in tasks if task is not None and not task.done()}
    while pending and (left := deadline - loop.time()) > 0:
        for task in pending:
            if task.cancelling():
                log.debug("background task %s still runs after its cancellation; cancelling it again",
                          task.get_name())
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=min(RECANCEL_S, left))
    for task in tasks:
        if task is not None and task.done() and not task.cancelled() and task.exception() is not None:
            log.debug("background task %s had ended with %r", task.get_name(), task.exception())
    for task in pending:
        log.warning("background task %s did not stop within %g s; left behind", task.get_name(), timeout_s)
