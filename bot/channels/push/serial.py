"""Ordered work per conversation, and background tasks kept until they end.

A push channel's outgoing messages for one conversation must go out one after another (a late bot answer, then
the agent's reply), while different conversations proceed at once. asyncio keeps only weak references to tasks,
so both classes hold theirs until they end, and both let running work finish at shutdown before cancelling.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from bot import tasks

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


class KeyedSerial:
    """Runs jobs one after another per key (a conversation) and concurrently across keys; a failing job is
    logged and the next one still runs."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: dict[str, deque[Job]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}

    def submit(self, key: str, job: Job) -> None:
        self._jobs.setdefault(key, deque()).append(job)
        if key not in self._workers:
            self._workers[key] = asyncio.get_running_loop().create_task(self._run(key), name=f"{self.name}:{key}")

    async def _run(self, key: str) -> None:
        jobs = self._jobs[key]
        try:
            while jobs:
                job = jobs.popleft()
                try:
                    await job()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("%s: a job for %s failed", self.name, key)
        finally:
            self._workers.pop(key, None)
            if not jobs:
                self._jobs.pop(key, None)

    def __len__(self) -> int:
        return len(self._workers)

    async def drain(self, timeout_s: float) -> None:
        """Let running work finish (shutdown), then cancel what is left."""
        await drain(list(self._workers.values()), timeout_s)


class TaskSet:
    """Background tasks kept referenced until they end, and cancelled at shutdown."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Awaitable[Any], name: str | None = None) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        if name:
            task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def __len__(self) -> int:
        return len(self._tasks)

    async def drain(self, timeout_s: float) -> None:
        await drain(list(self._tasks), timeout_s)


async def drain(running: list[asyncio.Task[Any]], timeout_s: float) -> None:
    """Wait up to `timeout_s` for the tasks, then cancel the rest."""
    if running:
        _, pending = await asyncio.wait(running, timeout=timeout_s)
        await tasks.stop(*pending)
