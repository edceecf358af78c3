"""The conversation's lock for an agent action: the same lock a shopper's turn holds, so an agent's change never
interleaves with a turn (or with another agent's change), on one worker or several."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from bot.stores import LockTimeout, TrackerStore
from handoff.errors import Busy

LOCK_TIMEOUT_S = 10.0


@contextlib.asynccontextmanager
async def locked(trackers: TrackerStore, conversation_id: str, timeout_s: float = LOCK_TIMEOUT_S
                 ) -> AsyncIterator[None]:
    """Hold the conversation's lock; Busy (nothing changed) if a turn keeps it longer than timeout_s."""
    try:
        async with trackers.lock(conversation_id, timeout_s):
            yield
    except LockTimeout:
        raise Busy("the conversation is busy; try again") from None
