"""Which failures mean "the store could not keep it" (Redis down or paused, SQLite locked, a conversation lock
never freed). A channel must not acknowledge a message then: WeChat never resends a push answered `success`
and Meta never resends an event answered 200, so the answer is an error status and the platform tries again.
"""

from __future__ import annotations

import sqlite3

from redis.exceptions import RedisError

from bot.stores.base import LockTimeout

UNAVAILABLE: tuple[type[BaseException], ...] = (RedisError, sqlite3.Error, LockTimeout)


def store_unavailable(exc: BaseException) -> bool:
    """True when `exc` says the store did not (or may not have) kept what was asked."""
    return isinstance(exc, UNAVAILABLE)
