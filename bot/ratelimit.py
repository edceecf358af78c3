"""Rate limits: token buckets (a burst, then a steady rate), so one client cannot crowd out the others.

Named buckets live in the store (`KeyValue.take_token`): on Redis one Lua step per request, so several workers
share one budget; on SQLite in the worker's memory (bot/stores/buckets.py). A refused request takes nothing from
its bucket and is answered (HTTP 429 with `Retry-After` after a short pause, or the widget's `rate_limited`
frame); nothing of it is stored, so the client can send it again. A store that does not answer refuses nobody:
the request goes on and its own store call answers 503. Addresses in `KEFU_RATE_LIMIT_EXEMPT` (load tests,
trusted internal callers) skip every limit here; login throttling and upload quotas are not rate limits and
always apply.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.client_ip import Network, within
from bot.http import HTTPError
from bot.stores.errors import UNAVAILABLE

if TYPE_CHECKING:
    from bot.stores import KeyValue

log = logging.getLogger(__name__)
EXEMPT_ENV = "KEFU_RATE_LIMIT_EXEMPT"
REFUSAL_DELAY_S = 1.0
# buckets named after a conversation, by what they count (erasure drops them with the conversation)
CONVERSATION_BUCKETS = {"rest": "rest:conversation:{}", "widget": "widget:messages:{}",
                        "widget uploads": "widget:uploads:{}"}


def conversation_bucket(kind: str, conversation_id: str) -> str:
    """The bucket of one conversation's messages ("rest", "widget") or uploads ("widget uploads")."""
    return CONVERSATION_BUCKETS[kind].format(conversation_id)


async def forget_conversation(kv: KeyValue, conversation_id: str) -> int:
    """Drop the conversation's buckets (erasure: no key keeps naming it); how many there were."""
    names = [f"rate:{name.format(conversation_id)}" for name in CONVERSATION_BUCKETS.values()]
    return sum([await kv.drop_token_bucket(name) for name in names])


@dataclass(frozen=True)
class Rate:
    per_minute: float
    burst: int

    @property
    def per_second(self) -> float:
        return self.per_minute / 60


class RateLimited(HTTPError):
    """429 with `Retry-After` (whole seconds, as HTTP wants) and `retry_after_s` in the JSON body."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        seconds = max(1, math.ceil(retry_after_s))
        super().__init__(429, message, headers={"Retry-After": str(seconds)}, retry_after_s=round(retry_after_s, 1))


class RateLimits:
    """The app's limits: buckets in its store, and the addresses that skip them."""

    def __init__(self, kv: KeyValue, exempt: Sequence[Network] = ()) -> None:
        self.kv = kv
        self.exempt = tuple(exempt)
        self._quiet_until = 0.0  # while the store is down, one warning a minute, not one per request

    def is_exempt(self, address: str | None) -> bool:
        return bool(self.exempt) and within(address, self.exempt)

    async def wait_s(self, address: str | None, bucket: str, rate: Rate) -> float:
        """Take a token from `bucket` for a request from `address`: 0.0, or the seconds to wait (none taken)."""
        if self.is_exempt(address):
            return 0.0
        try:
            return await self.kv.take_token(f"rate:{bucket}", rate.per_second, rate.burst)
        except UNAVAILABLE as exc:
            if time.monotonic() >= self._quiet_until:
                self._quiet_until = time.monotonic() + 60
                log.warning("rate limits: the store does not answer (%s); not limiting meanwhile", type(exc).__name__)
            return 0.0

    async def check(self, address: str | None, bucket: str, rate: Rate, message: str) -> None:
        """As `wait_s`, for an HTTP route: over the limit raises `RateLimited` (429), after a pause (the client
        must wait anyway): a client flooding over keep-alive connections gets at most one answer per connection
        per REFUSAL_DELAY_S, instead of as many refusals as it can ask for, which other shoppers would pay for."""
        wait = await self.wait_s(address, bucket, rate)
        if wait > 0:
            await asyncio.sleep(min(wait, REFUSAL_DELAY_S))
            raise RateLimited(message, wait)
