"""One background loop per worker: give waiting shoppers to free online agents, time out those nobody took, and
tell everyone still waiting their new place in line and wait.

It wakes every tick_s, or at once when something changed (a shopper queued, an agent came online or freed a
slot). Each move takes the conversation's lock briefly and re-reads the record; a conversation that is busy (a
shopper's turn) is left for the next round, and a move made from a stale plan fails its compare-and-set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bot import tasks
from bot.stores import LockTimeout, TrackerStore
from handoff import routing
from handoff.queue import HandoffQueue
from handoff.records import HandoffRecord, HandoffRecords
from handoff.roster import Roster
from handoff.settings import HandoffSettings

log = logging.getLogger(__name__)

BACKGROUND_LOCK_TIMEOUT_S = 3.0


class Housekeeper:
    def __init__(self, trackers: TrackerStore, records: HandoffRecords, roster: Roster, queue: HandoffQueue,
                 settings: HandoffSettings, wake: asyncio.Event, now: Callable[[], float] = time.time) -> None:
        self.trackers = trackers
        self.records = records
        self.roster = roster
        self.queue = queue
        self.settings = settings
        self.wake = wake
        self.now = now
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="kefu-handoff")

    async def stop(self) -> None:
        """Stop the loop. Also by flag: a store client that swallows a cancellation must not hang shutdown."""
        if self._task is not None:
            self._stopping = True
            self.wake.set()
            await tasks.stop(self._task)
            self._task = None

    async def _run(self) -> None:
        while not self._stopping:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow the cancellation that stops this loop
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.tick_s):
                    await self.wake.wait()
            self.wake.clear()
            try:
                await self.housekeeping()
            except Exception:  # a bad moment of the store must not end the loop
                log.exception("handoff housekeeping failed")

    async def housekeeping(self) -> None:
        """One round: time-outs, then assignments, then new places in line."""
        now = self.now()
        for record in await self.records.waiting():
            if now - record.queued_at >= self.settings.no_answer_timeout_s:
                await self._move(record.conversation_id, self.queue.time_out)
        if self.settings.auto_assign:
            for record, agent in routing.plan(await self.records.waiting(), await self.roster.on_duty(now), now,
                                              self.settings.overflow_after_s):
                await self._move(record.conversation_id, self.queue.assign, agent)
        await self.reposition()

    async def reposition(self) -> None:
        """Tell every waiting shopper whose place in line or estimated wait changed (a new `queued` event)."""
        for record, position, eta in await self.queue.places():
            if (record.told_position, record.told_eta_s) != (position, eta):
                await self._move(record.conversation_id, self.queue.tell, position, eta)

    async def _move(self, conversation_id: str, move: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run a move on the conversation's record, re-read under its lock; skip it if the lock is busy."""
        try:
            async with self.trackers.lock(conversation_id, BACKGROUND_LOCK_TIMEOUT_S):
                record: HandoffRecord | None = await self.records.get(conversation_id)
                if record is not None and record.state == "queued":
                    await move(record, *args)
        except LockTimeout:
            log.info("conversation %s busy; retrying on the next round", conversation_id)
