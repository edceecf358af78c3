"""Redis stores: several `kefu run` workers share conversations, locks, the queue and console events.

Keys (prefix default "kefu:"; every per-conversation key ends in a distinct suffix, so no conversation id,
colons included, can make two keys collide):

    {p}conv:{id}:events   list of event JSON, seq = position + 1
    {p}conv:{id}:info     hash: created_at, updated_at, last_seq, channel
    {p}conv:{id}:meta     hash: field -> JSON value
    {p}conv:{id}:lock     lock token (SET NX PX)
    {p}conversations      sorted set: conversation id by updated_at
    {p}msgid:{key}        dedupe marker (SET NX PX)
    {p}kv:{key}           JSON document;  {p}kv-index: sorted set of document keys (prefix scans)
    {p}zset:{name}        sorted sets for queues
    {p}counter:{name}     integer counter (INCR; PEXPIRE for a counter with a window)
    {p}bucket:{name}      token bucket hash: tokens, at (Redis TIME); expires when it would be full
    {p}events             pub/sub channel: {"conversation_id": ..., "events": [{...}, ...]} (an append's events)

The multi-key scripts assume one Redis (or a primary with replicas), not Redis Cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from functools import partial
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot import tasks
from bot.stores.base import (
    Event,
    FanOut,
    LocalLocks,
    LockTimeout,
    Stores,
    Subscription,
    check_page,
    document,
    dumps,
    event_json,
    first_channel,
    prepare_events,
)
from bot.stores.redis_persistence import warn_if_not_persistent

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 5.0  # closing must not hang a worker's shutdown on a connection that does not answer

# Appends atomically: seq comes from the list length inside the script, so two workers never share a seq,
# and the PUBLISH happens in the same step, so subscribers see every conversation's events in seq order. One
# message carries all the events of an append (a turn's four or five): every worker reads and parses every
# message, so a message per event cost each of them that many reads.
# Event bodies arrive as JSON objects without seq; the script splices `"seq":N,` in as text (no cjson round
# trip, which would lose float precision and key order).
_APPEND = """
local base = redis.call('LLEN', KEYS[1])
local stored = {}
for i = 6, #ARGV do
  local seq = base + i - 5
  local event = '{"seq":' .. string.format('%d', seq) .. ',' .. string.sub(ARGV[i], 2)
  redis.call('RPUSH', KEYS[1], event)
  stored[#stored + 1] = event
end
redis.call('PUBLISH', ARGV[4], ARGV[5] .. table.concat(stored, ',') .. ']}')
redis.call('HSETNX', KEYS[2], 'created_at', ARGV[2])
redis.call('HSET', KEYS[2], 'updated_at', ARGV[2], 'last_seq', base + #ARGV - 5)
if ARGV[3] ~= '' then redis.call('HSETNX', KEYS[2], 'channel', ARGV[3]) end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return stored
"""

# Only the holder (same random token) may release or extend a lock.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

# INCR, and a window for a counter that has none yet (PTTL -1); -2 cannot happen right after INCR.
_INCR = """
local value = redis.call('INCR', KEYS[1])
if ARGV[1] ~= '' and redis.call('PTTL', KEYS[1]) == -1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return value
"""

# A token bucket (bot/stores/buckets.py's arithmetic) on Redis's clock, so every worker shares it and their clocks
# do not matter. A refusal writes nothing; a bucket expires once it would be full again anyway. Returns the
# seconds to wait as text ('0': taken), since a Lua number would reach the caller as a truncated integer.
_TAKE_TOKEN = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = burst
if bucket[1] then tokens = math.min(burst, tonumber(bucket[1]) + math.max(0, now - tonumber(bucket[2])) * rate) end
if tokens < 1 then return tostring((1 - tokens) / rate) end
tokens = tokens - 1
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'at', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return '0'
"""

# Compare-and-set on a JSON document (canonical text, see base.dumps), keeping the prefix index in step.
_CAS = """
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '0' then
  if current then return 0 end
elseif current ~= ARGV[2] then
  return 0
end
if ARGV[3] == '1' then
  redis.call('SET', KEYS[1], ARGV[4])
  redis.call('ZADD', KEYS[2], 0, ARGV[5])
else
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[5])
end
return 1
"""


OFF_LOOP_EVENTS = 500  # reads of more events than this are parsed on a worker thread


def _parse_events(texts: list[str]) -> list[Event]:
    return [json.loads(t) for t in texts]


# Per worker. A busy moment waits up to POOL_TIMEOUT_S for a free connection instead of failing the message
# (redis-py's default pool raises MaxConnectionsError at its cap); the URL's query overrides either:
# redis://host:6379/0?max_connections=200&timeout=5
POOL_MAX_CONNECTIONS = 100
POOL_TIMEOUT_S = 10.0


class _Client:
    """The connection pool shared by the tracker store, key/value store and bus; closed once."""

    def __init__(self, url: str) -> None:
        pool = aioredis.BlockingConnectionPool.from_url(
            url, decode_responses=True, max_connections=POOL_MAX_CONNECTIONS, timeout=POOL_TIMEOUT_S)
        self.redis: aioredis.Redis = aioredis.Redis.from_pool(pool)  # closes the pool with the client
        self._closed = False

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await self.redis.aclose()


class RedisEventBus:
    """One pub/sub channel for all conversations, one Redis subscription per worker, fanned out locally.

    Pub/sub delivers only while connected: what is published while a worker reconnects is lost. Every
    subscription is told when the bus is back (`Subscription.resumes`), so it can catch up from the tracker
    store with events(after_seq).
    """

    def __init__(self, client: _Client, channel: str, maxsize: int = 10_000) -> None:
        self._client = client
        self.channel = channel
        self._maxsize = maxsize
        self._fanout = FanOut()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def publish(self, conversation_id: str, event: Event) -> None:
        message = json.dumps({"conversation_id": conversation_id, "events": [event]}, ensure_ascii=False)
        await self._client.redis.publish(self.channel, message)

    def subscribe(self) -> Subscription:
        if self._task is None and not self._fanout.closed:
            self._task = asyncio.get_running_loop().create_task(self._listen(), name="kefu-event-bus")
        return Subscription(self._fanout, self._ready.wait, self._maxsize)

    @property
    def subscriber_count(self) -> int:
        return len(self._fanout)

    async def _listen(self) -> None:
        backoff = 0.1
        subscribed_before = False
        while True:
            pubsub = self._client.redis.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                async for message in pubsub.listen():
                    if message["type"] == "subscribe":
                        # confirmed: from here on nothing published is missed; a confirmation after the
                        # first (a new connection, or redis-py's own reconnect) means something may have been
                        self._ready.set()
                        if subscribed_before:
                            log.warning("event bus resubscribed to Redis; subscribers catch up from the store")
                            self._fanout.resumed()
                        subscribed_before = True
                        backoff = 0.1
                    elif message["type"] == "message":
                        self._dispatch(message["data"])
            except Exception as exc:  # connection lost (or a bug): never leave subscribers waiting forever
                self._ready.clear()
                log.warning("event bus lost its Redis subscription (%r); retrying in %.1f s", exc, backoff)
            finally:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(CLOSE_TIMEOUT_S):
                        await pubsub.aclose()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    def _dispatch(self, data: str) -> None:
        try:
            message = json.loads(data)
            conversation_id, events = message["conversation_id"], message["events"]
            if not isinstance(events, list):
                raise TypeError("events is not a list")
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed message on %s: %.200r", self.channel, data)
            return
        for event in events:
            self._fanout.deliver(conversation_id, event)

    async def close(self) -> None:
        self._fanout.close()
        await tasks.stop(self._task, timeout_s=CLOSE_TIMEOUT_S)
        self._task = None


class RedisTrackerStore:
    def __init__(self, client: _Client, prefix: str, bus: RedisEventBus, lock_ttl_s: float = 10.0) -> None:
        if lock_ttl_s <= 0:
            raise ValueError("lock_ttl_s must be positive")
        self._client = client
        self._r = client.redis
        self._p = prefix
        self._bus = bus
        self._lock_ttl_ms = max(int(lock_ttl_s * 1000), 1)
        self._local = LocalLocks()
        self._append_script = self._r.register_script(_APPEND)
        self._release_script = self._r.register_script(_RELEASE)
        self._renew_script = self._r.register_script(_RENEW)

    def _conv(self, conversation_id: str, suffix: str) -> str:
        return f"{self._p}conv:{conversation_id}:{suffix}"

    async def append(self, conversation_id: str, events: list[Event]) -> list[Event]:
        now = time.time()
        prepared = prepare_events(events, now)
        if not prepared:
            return []
        bodies = [event_json(e) for e in prepared]
        prefix = f'{{"conversation_id":{json.dumps(conversation_id, ensure_ascii=False)},"events":['
        keys = [self._conv(conversation_id, "events"), self._conv(conversation_id, "info"),
                f"{self._p}conversations"]
        channel = first_channel(prepared) or ""
        stored = await self._append_script(
            keys=keys, args=[conversation_id, repr(now), channel, self._bus.channel, prefix, *bodies]
        )
        return [json.loads(text) for text in stored]

    async def events(self, conversation_id: str, after_seq: int = 0, limit: int | None = None) -> list[Event]:
        check_page(limit)
        if limit == 0:
            return []
        start = max(after_seq, 0)
        end = -1 if limit is None else start + limit - 1
        texts = await self._r.lrange(self._conv(conversation_id, "events"), start, end)
        if len(texts) > OFF_LOOP_EVENTS:  # a long conversation read whole: parsing it would hold the event loop
            return await asyncio.to_thread(_parse_events, texts)
        return _parse_events(texts)

    async def exists(self, conversation_id: str) -> bool:
        return bool(await self._r.exists(self._conv(conversation_id, "info")))

    async def conversations(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        check_page(limit, offset)
        if limit == 0:
            return []
        ids = await self._r.zrevrange(f"{self._p}conversations", offset, offset + limit - 1)
        async with self._r.pipeline(transaction=False) as pipe:
            for cid in ids:
                pipe.hmget(self._conv(cid, "info"), "channel", "created_at", "updated_at", "last_seq")
            rows = await pipe.execute()
        return [
            {
                "conversation_id": cid,
                "channel": channel,
                "created_at": float(created_at),
                "updated_at": float(updated_at),
                "last_seq": int(last_seq),
            }
            for cid, (channel, created_at, updated_at, last_seq) in zip(ids, rows, strict=True)
        ]

    async def set_meta(self, conversation_id: str, **fields: Any) -> None:
        if fields:
            mapping = {key: dumps(value) for key, value in fields.items()}
            await self._r.hset(self._conv(conversation_id, "meta"), mapping=mapping)

    async def get_meta(self, conversation_id: str) -> dict[str, Any]:
        raw = await self._r.hgetall(self._conv(conversation_id, "meta"))
        return {key: json.loads(value) for key, value in raw.items()}

    async def claim_message_id(self, key: str, ttl_s: float = 86400) -> bool:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        ttl_ms = max(int(ttl_s * 1000), 1)
        return bool(await self._r.set(f"{self._p}msgid:{key}", "1", nx=True, px=ttl_ms))

    async def erase(self, conversation_id: str) -> int:
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.llen(self._conv(conversation_id, "events"))
            pipe.delete(*(self._conv(conversation_id, suffix) for suffix in ("events", "info", "meta")))
            pipe.zrem(f"{self._p}conversations", conversation_id)
            count, *_ = await pipe.execute()
        return int(count)

    async def forget_message_ids(self, prefix: str) -> int:
        pattern = f"{_glob_escape(self._p)}msgid:{_glob_escape(prefix)}*"
        keys = [key async for key in self._r.scan_iter(match=pattern, count=1000)]
        return int(await self._r.delete(*keys)) if keys else 0

    def lock(self, conversation_id: str, timeout_s: float = 30.0) -> AbstractAsyncContextManager[None]:
        """Across workers: SET NX PX with a random token, kept alive while held, released only by its holder.

        Coroutines of this worker queue on a local asyncio.Lock first (fair, and they don't poll Redis).
        The Redis key expires lock_ttl_s after a worker dies, so a crash blocks a conversation only briefly.
        """
        return self._lock(conversation_id, timeout_s)

    @contextlib.asynccontextmanager
    async def _lock(self, conversation_id: str, timeout_s: float) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        async with self._local.hold(conversation_id, timeout_s):
            key = self._conv(conversation_id, "lock")
            token = secrets.token_hex(16)
            delay = 0.002
            while not await self._r.set(key, token, nx=True, px=self._lock_ttl_ms):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise LockTimeout(conversation_id, timeout_s)
                await asyncio.sleep(min(delay * random.uniform(0.5, 1.5), remaining))
                delay = min(delay * 2, 0.05)
            keeper = loop.create_task(self._keep_alive(key, token, conversation_id))
            try:
                yield
            finally:
                keeper.cancel()
                # Shielded: a cancelled handler must still release, or others wait for the expiry.
                await asyncio.shield(self._release(key, token, conversation_id))

    async def _keep_alive(self, key: str, token: str, conversation_id: str) -> None:
        while True:
            await asyncio.sleep(self._lock_ttl_ms / 3000)
            try:
                renewed = await self._renew_script(keys=[key], args=[token, self._lock_ttl_ms])
            except RedisError as exc:
                log.warning("could not extend the lock on conversation %s: %s", conversation_id, exc)
                continue
            if not renewed:
                log.warning("lost the lock on conversation %s: it expired while held", conversation_id)
                return

    async def _release(self, key: str, token: str, conversation_id: str) -> None:
        if not await self._release_script(keys=[key], args=[token]):
            log.warning("the lock on conversation %s had expired before release; another worker may "
                        "have handled it concurrently", conversation_id)

    async def close(self) -> None:
        await self._client.close()


def _glob_escape(text: str) -> str:
    """`text` matched literally in a SCAN MATCH pattern."""
    return "".join(f"\\{ch}" if ch in "*?[]\\" else ch for ch in text)


class RedisKeyValue:
    def __init__(self, client: _Client, prefix: str) -> None:
        self._client = client
        self._r = client.redis
        self._p = prefix
        self._index = f"{prefix}kv-index"
        self._cas_script = self._r.register_script(_CAS)
        self._incr_script = self._r.register_script(_INCR)
        self._take_token_script = self._r.register_script(_TAKE_TOKEN)

    def _key(self, key: str) -> str:
        return f"{self._p}kv:{key}"

    async def get(self, key: str) -> dict[str, Any] | None:
        text = await self._r.get(self._key(key))
        return None if text is None else json.loads(text)

    async def set(self, key: str, value: dict[str, Any]) -> None:
        text = document(value)
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.set(self._key(key), text)
            pipe.zadd(self._index, {key: 0})
            await pipe.execute()

    async def delete(self, key: str) -> None:
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.delete(self._key(key))
            pipe.zrem(self._index, key)
            await pipe.execute()

    async def scan(self, prefix: str) -> list[tuple[str, dict[str, Any]]]:
        if prefix:
            # 0xff never occurs in UTF-8, so this bound is above every key that starts with prefix.
            keys = await self._r.zrangebylex(self._index, f"[{prefix}", b"[" + prefix.encode() + b"\xff")
        else:
            keys = await self._r.zrangebylex(self._index, "-", "+")
        if not keys:
            return []
        texts = await self._r.mget([self._key(k) for k in keys])
        return [(k, json.loads(t)) for k, t in zip(keys, texts, strict=True) if t is not None]

    async def cas(self, key: str, expected: dict[str, Any] | None, new: dict[str, Any] | None) -> bool:
        args = [
            "0" if expected is None else "1",
            "" if expected is None else document(expected),
            "0" if new is None else "1",
            "" if new is None else document(new),
            key,
        ]
        return bool(await self._cas_script(keys=[self._key(key), self._index], args=args))

    async def incr(self, counter: str, ttl_s: float | None = None) -> int:
        if ttl_s is None:
            return int(await self._r.incr(f"{self._p}counter:{counter}"))
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        ttl_ms = str(max(int(ttl_s * 1000), 1))
        return int(await self._incr_script(keys=[f"{self._p}counter:{counter}"], args=[ttl_ms]))

    async def get_counter(self, counter: str) -> int:
        value = await self._r.get(f"{self._p}counter:{counter}")
        return 0 if value is None else int(value)

    async def delete_counter(self, counter: str) -> None:
        await self._r.delete(f"{self._p}counter:{counter}")

    async def take_token(self, bucket: str, per_second: float, burst: float) -> float:
        if per_second <= 0 or burst < 1:
            raise ValueError("a bucket needs per_second > 0 and burst >= 1")
        wait = await self._take_token_script(keys=[f"{self._p}bucket:{bucket}"], args=[repr(per_second), repr(burst)])
        return float(wait)

    async def drop_token_bucket(self, bucket: str) -> bool:
        return bool(await self._r.delete(f"{self._p}bucket:{bucket}"))

    async def zadd(self, name: str, member: str, score: float) -> None:
        await self._r.zadd(f"{self._p}zset:{name}", {member: float(score)})

    async def zrem(self, name: str, member: str) -> None:
        await self._r.zrem(f"{self._p}zset:{name}", member)

    async def zrange(self, name: str) -> list[tuple[str, float]]:
        pairs = await self._r.zrange(f"{self._p}zset:{name}", 0, -1, withscores=True)
        return [(member, float(score)) for member, score in pairs]

    async def close(self) -> None:
        await self._client.close()


def open_redis_stores(url: str, prefix: str = "kefu:", lock_ttl_s: float = 10.0) -> Stores:
    """Stores on one Redis. Connects lazily (on first use), so this needs no running event loop."""
    client = _Client(url)
    bus = RedisEventBus(client, f"{prefix}events")
    return Stores(
        trackers=RedisTrackerStore(client, prefix, bus, lock_ttl_s),
        bus=bus,
        kv=RedisKeyValue(client, prefix),
        backend="redis",
        ping=client.redis.ping,
        startup_check=partial(warn_if_not_persistent, client.redis),
    )
