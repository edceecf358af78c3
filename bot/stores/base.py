"""The store interfaces (tracker, event bus, key/value) and the in-process pieces both backends share.

The tracker store is the single source of truth for a conversation (design.md): everything else -- channels,
the console, analytics -- reads its events or listens to them on the event bus. Two implementations follow
these protocols: SQLite + in-process (`bot.stores.sqlite`, the default) and Redis (`bot.stores.redis`, for
several workers). Both pass the same tests (tests/test_stores.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

log = logging.getLogger(__name__)

Event = dict[str, Any]


class LockTimeout(TimeoutError):
    """A conversation stayed locked by someone else for longer than the caller was willing to wait."""

    def __init__(self, conversation_id: str, timeout_s: float) -> None:
        super().__init__(f"could not lock conversation {conversation_id!r} within {timeout_s:g} s")
        self.conversation_id = conversation_id
        self.timeout_s = timeout_s


# -- protocols -----------------------------------------------------------------------------------------------


@runtime_checkable
class TrackerStore(Protocol):
    async def append(self, conversation_id: str, events: list[Event]) -> list[Event]:
        """Store events with the next gapless per-conversation `seq` (and a `timestamp` if missing), publish
        them on the bus, and return them as stored. Atomic: all or nothing, never two events with one seq."""

    async def events(self, conversation_id: str, after_seq: int = 0, limit: int | None = None) -> list[Event]:
        """Stored events with seq > after_seq, ordered by seq."""

    async def exists(self, conversation_id: str) -> bool:
        """True once the conversation has at least one event."""

    async def conversations(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Newest activity first: conversation_id, channel, created_at, updated_at, last_seq."""

    async def set_meta(self, conversation_id: str, **fields: Any) -> None:
        """Merge small JSON values (channel, sender, language, customer id...) into its meta."""

    async def get_meta(self, conversation_id: str) -> dict[str, Any]: ...

    async def claim_message_id(self, key: str, ttl_s: float = 86400) -> bool:
        """True the first time `key` is seen within ttl_s (channels retry webhooks: answer once)."""

    async def erase(self, conversation_id: str) -> int:
        """Delete the conversation -- events, listing, meta -- for good (a shopper's erasure request); returns
        how many events it had. SQLite overwrites the deleted bytes and empties its write-ahead log, so the
        erased text is gone from the files too (everything else deleted on its file before goes with it)."""

    async def forget_message_ids(self, prefix: str) -> int:
        """Drop the claimed message ids that start with prefix, so a new conversation under an erased id is
        not taken for a redelivery of the old one; returns how many."""

    def lock(self, conversation_id: str, timeout_s: float = 30.0) -> AbstractAsyncContextManager[None]:
        """Per-conversation mutual exclusion; raises LockTimeout after timeout_s."""

    async def close(self) -> None: ...


@runtime_checkable
class EventBus(Protocol):
    async def publish(self, conversation_id: str, event: Event) -> None: ...

    def subscribe(self) -> Subscription:
        """Every conversation's events from now on: `async for cid, event in bus.subscribe()`."""

    async def close(self) -> None: ...


@runtime_checkable
class KeyValue(Protocol):
    """Small JSON documents and sorted sets for the handoff queue, tickets and agent accounts."""

    async def get(self, key: str) -> dict[str, Any] | None: ...

    async def set(self, key: str, value: dict[str, Any]) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def scan(self, prefix: str) -> list[tuple[str, dict[str, Any]]]:
        """All (key, value) whose key starts with prefix, ordered by key."""

    async def cas(self, key: str, expected: dict[str, Any] | None, new: dict[str, Any] | None) -> bool:
        """Write `new` (None deletes) only if the current value equals `expected` (None: absent). Atomic, so
        of two agents claiming one conversation exactly one wins."""

    async def incr(self, counter: str, ttl_s: float | None = None) -> int:
        """Add one to the named counter (0 before its first use) and return the new value, in one atomic step:
        every caller, in any worker or process, gets its own number and none is skipped (ticket numbers).
        Counters are apart from the documents: `get`/`scan` never see them.

        With `ttl_s`, a counter without an expiry gets one, ttl_s after this increment: a fixed window that
        later increments never extend, after which the counter starts again from 0 (rate limits, login
        failures -- counted right under parallel requests, unlike a read-then-write of a document)."""

    async def get_counter(self, counter: str) -> int:
        """The counter's value now: 0 if it was never used or its window has ended."""

    async def delete_counter(self, counter: str) -> None:
        """Back to 0 (and no expiry)."""

    async def take_token(self, bucket: str, per_second: float, burst: float) -> float:
        """Take one token from the named token bucket (full, `burst` tokens, when first used; refilled at
        `per_second`): 0.0 if there was one; else nothing is taken and the answer is the seconds until there is
        one. Atomic, so parallel requests cannot overdraw it. Redis: shared by every worker; SQLite: kept in
        this worker's memory (rate limits, bot/ratelimit.py)."""

    async def drop_token_bucket(self, bucket: str) -> bool:
        """Forget the named bucket (full again on next use): whether there was one."""

    async def zadd(self, name: str, member: str, score: float) -> None: ...

    async def zrem(self, name: str, member: str) -> None: ...

    async def zrange(self, name: str) -> list[tuple[str, float]]:
        """Members ordered by score (then member)."""

    async def close(self) -> None: ...


@dataclass
class Stores:
    """Everything stateful a worker needs, opened together and closed together (in app.cleanup_ctx)."""

    trackers: TrackerStore
    bus: EventBus
    kv: KeyValue
    backend: str = "sqlite"
    ping: Callable[[], Awaitable[object]] | None = None  # raises when the backend does not answer (/health)
    startup_check: Callable[[], Awaitable[None]] | None = None  # logs what the operator must fix (Redis AOF)

    async def close(self) -> None:
        # The bus first: it ends its subscribers' loops while the connections they rely on are still open.
        await self.bus.close()
        await self.trackers.close()
        await self.kv.close()


# -- helpers shared by both backends -------------------------------------------------------------------------


def dumps(value: Any) -> str:
    """Canonical JSON: cas compares stored text, so equal dicts must encode identically."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def event_json(event: Event) -> str:
    """An event as stored (without seq: the backend splices `"seq":N,` in first, see redis.py)."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def document(value: dict[str, Any]) -> str:
    """A key/value document as canonical JSON; only dicts, so every reader gets the same shape back."""
    if not isinstance(value, dict):
        raise TypeError(f"key/value documents are dicts, got {type(value).__name__}")
    return dumps(value)


def prepare_events(events: list[Event], now: float | None = None) -> list[Event]:
    """Validate before anything is written; copy, add a timestamp if missing, drop any caller-given seq."""
    if not isinstance(events, list):
        raise TypeError(f"events must be a list of dicts, got {type(events).__name__}")
    now = time.time() if now is None else now
    prepared = []
    for event in events:
        if not isinstance(event, dict) or not isinstance(event.get("event"), str):
            raise ValueError(f"not an event (a dict with an 'event' name): {event!r:.200}")
        copy = {k: v for k, v in event.items() if k != "seq"}
        if copy.get("timestamp") is None:
            copy["timestamp"] = now
        prepared.append(copy)
    return prepared


def first_channel(events: list[Event]) -> str | None:
    """The conversation's channel: input_channel of the first user event that has one."""
    channels = (e.get("input_channel") for e in events if e.get("event") == "user")
    return next((c for c in channels if c), None)


def check_page(limit: int | None, offset: int = 0) -> None:
    if (limit is not None and limit < 0) or offset < 0:
        raise ValueError("limit and offset must not be negative")


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string starting with prefix (UTF-8 byte order), None if none."""
    while prefix:
        code = ord(prefix[-1]) + 1
        if 0xD800 <= code <= 0xDFFF:  # surrogates cannot be encoded; the next character is U+E000
            code = 0xE000
        if code <= 0x10FFFF:
            return prefix[:-1] + chr(code)
        prefix = prefix[:-1]
    return None


class LocalLocks:
    """asyncio.Lock per key, created on demand and dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @contextlib.asynccontextmanager
    async def hold(self, key: str, timeout_s: float, name: str | None = None) -> AsyncIterator[None]:
        lock, users = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            try:
                async with asyncio.timeout(timeout_s):
                    await lock.acquire()
            except TimeoutError:
                raise LockTimeout(name or key, timeout_s) from None
            try:
                yield
            finally:
                lock.release()
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[key]


_CLOSED = object()
_RESUMED = object()


class Subscription:
    """One subscriber's view of the bus: an async iterator of (conversation_id, event).

    It is registered as soon as subscribe() returns (so nothing published afterwards is missed), and is
    unregistered by aclose(), by leaving `async with`, when the bus closes (iteration ends), when it is
    garbage-collected after a `break`, and -- like an async generator -- when a pending `__anext__` is
    cancelled (so a timed-out `asyncio.wait_for(anext(sub), t)` ends it too: poll with `get(timeout)`).
    `async with bus.subscribe() as sub:` also waits until the worker's Redis subscription is live, so a
    test or a console can rely on seeing the very next event. `resumes` counts the times the bus came back
    after losing its Redis connection: what was published meanwhile never arrives, so a subscriber that shows
    conversations live catches up from the tracker store when it changes (`get` returns None at once then).
    """

    def __init__(self, fanout: FanOut, ready: Callable[[], Awaitable[None]], maxsize: int) -> None:
        self._fanout = fanout
        self._ready = ready
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)
        self._closed = False
        self.resumes = 0
        fanout.add(self._queue)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> tuple[str, Event]:
        if self._closed:
            raise StopAsyncIteration
        try:
            await self._ready()
            item = await self._queue.get()
            while item is _RESUMED:
                self.resumes += 1
                item = await self._queue.get()
        except asyncio.CancelledError:
            self._unregister()
            raise
        if item is _CLOSED:
            self._unregister()
            raise StopAsyncIteration
        return item

    async def get(self, timeout: float | None = None) -> tuple[str, Event] | None:
        """The next (conversation_id, event), or None if none came within timeout, the bus has just resumed
        (see `resumes`) or the subscription is closed (see `closed`). Unlike a timed-out
        `wait_for(anext(sub))`, a timeout here keeps the subscription: use it for heartbeats
        (`while not sub.closed: item = await sub.get(25) ...`)."""
        if self._closed:
            return None
        try:
            async with asyncio.timeout(timeout):
                await self._ready()
                item = await self._queue.get()
        except TimeoutError:
            return None
        if item is _RESUMED:
            self.resumes += 1
            return None
        if item is _CLOSED:
            self._unregister()
            return None
        return item

    @property
    def closed(self) -> bool:
        return self._closed

    async def __aenter__(self) -> Subscription:
        await self._ready()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._unregister()

    def _unregister(self) -> None:
        self._closed = True
        self._fanout.discard(self._queue)

    def __del__(self) -> None:
        self._fanout.discard(self._queue)


class FanOut:
    """Delivers each event to every subscriber's queue without ever waiting on a slow subscriber.

    Subscribers share the event dicts: treat them as read-only.
    """

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[Any]] = set()
        self._warned: set[int] = set()
        self.closed = False

    def __len__(self) -> int:
        return len(self._queues)

    def add(self, queue: asyncio.Queue[Any]) -> None:
        if self.closed:
            queue.put_nowait(_CLOSED)
        else:
            self._queues.add(queue)

    def discard(self, queue: asyncio.Queue[Any]) -> None:
        self._queues.discard(queue)
        self._warned.discard(id(queue))

    def deliver(self, conversation_id: str, event: Event) -> None:
        self._put((conversation_id, event))

    def resumed(self) -> None:
        """The bus lost events (it reconnected): tell every subscriber (`Subscription.resumes`)."""
        self._put(_RESUMED)

    def _put(self, item: object) -> None:
        for queue in list(self._queues):
            if queue.full():
                # A subscriber that stopped reading must not grow memory forever; it can catch up with
                # events(after_seq) from the tracker store, which is the source of truth.
                queue.get_nowait()
                if id(queue) not in self._warned:
                    self._warned.add(id(queue))
                    log.warning("event bus subscriber is not keeping up; dropping its oldest events")
            queue.put_nowait(item)

    def close(self) -> None:
        self.closed = True
        for queue in list(self._queues):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(_CLOSED)
        self._queues.clear()


async def _no_wait() -> None:
    return None


class LocalEventBus:
    """In-process event bus for the embedded (single worker) mode."""

    def __init__(self, maxsize: int = 10_000) -> None:
        self._fanout = FanOut()
        self._maxsize = maxsize

    async def publish(self, conversation_id: str, event: Event) -> None:
        self.publish_nowait(conversation_id, event)

    def publish_nowait(self, conversation_id: str, event: Event) -> None:
        self._fanout.deliver(conversation_id, event)

    def subscribe(self) -> Subscription:
        return Subscription(self._fanout, _no_wait, self._maxsize)

    @property
    def subscriber_count(self) -> int:
        return len(self._fanout)

    async def close(self) -> None:
        self._fanout.close()
