"""The stores contract, run against both backends: embedded SQLite and a real redis-server (conftest.py).

"Another worker" is a second Stores instance on the same data: a second client of the same Redis, or a second
connection to the same SQLite file. Locks and the bus are per process in embedded mode, so there the peer
for those tests is the same instance.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import redis.asyncio as aioredis

from bot import strict_json
from bot.dialogue import events as ev
from bot.dialogue.tracker import Tracker
from bot.stores import EventBus, KeyValue, LockTimeout, Stores, TrackerStore, create_stores
from bot.stores.base import LocalLocks

BACKENDS = [pytest.param("sqlite"), pytest.param("redis", marks=pytest.mark.redis)]


@dataclass
class Backend:
    name: str
    open: Callable[..., Stores]  # a new instance on the same data: another worker, or after a restart
    opened: list[Stores] = field(default_factory=list)
    where: tuple[str | None, str, str] = (None, "", "")  # create_stores(url, sqlite_path, prefix) in a new process

    def peer(self, stores: Stores) -> Stores:
        """The other worker for locks and the bus: shared state in Redis, the same process when embedded."""
        return self.open() if self.name == "redis" else stores


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    opened: list[Stores] = []
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    prefix = f"test-{uuid4().hex[:12]}:"  # isolates this test's keys on the shared server
    path = tmp_path / "data" / "kefu.db"

    def open_stores(**kwargs: Any) -> Stores:
        opened.append(create_stores(url, path, redis_prefix=prefix, **kwargs))
        return opened[-1]

    yield Backend(request.param, open_stores, opened, (url, str(path), prefix))
    for stores in opened:
        await stores.close()  # idempotent: tests may have closed some already


@pytest.fixture
def stores(backend: Backend) -> Stores:
    return backend.open()


async def next_item(subscription: Any, timeout: float = 2.0) -> tuple[str, dict[str, Any]]:
    return await asyncio.wait_for(anext(subscription), timeout)


# -- tracker events ------------------------------------------------------------------------------------------


async def test_implements_the_protocols(stores: Stores) -> None:
    assert isinstance(stores.trackers, TrackerStore)
    assert isinstance(stores.bus, EventBus)
    assert isinstance(stores.kv, KeyValue)


async def test_append_assigns_seq_and_timestamp_and_keeps_the_event(stores: Stores) -> None:
    given = ev.user("你好, where is my order?", input_channel="widget", message_id="m1")
    given["timestamp"] = 1712345678.123456
    untimed = {"event": "action", "name": "action_listen", "seq": 99}

    before = time.time()
    stored = await stores.trackers.append("c1", [given, untimed])

    assert [e["seq"] for e in stored] == [1, 2]
    assert stored[0] == {**given, "seq": 1}
    assert stored[0]["timestamp"] == 1712345678.123456  # exact float, no precision lost
    assert before <= stored[1]["timestamp"] <= time.time()
    assert "seq" not in given and untimed["seq"] == 99  # the caller's dicts are not modified
    assert await stores.trackers.events("c1") == stored
    assert await stores.trackers.exists("c1")
    assert not await stores.trackers.exists("c2")


async def test_seq_is_gapless_under_50_concurrent_appends(stores: Stores) -> None:
    batches = [[ev.bot(f"{i}.{j}") for j in range(i % 3 + 1)] for i in range(50)]

    results = await asyncio.gather(*(stores.trackers.append("busy", batch) for batch in batches))

    total = sum(len(b) for b in batches)
    for batch, stored in zip(batches, results, strict=True):
        seqs = [e["seq"] for e in stored]
        assert seqs == list(range(seqs[0], seqs[0] + len(batch)))  # one append's events stay together
        assert [e["text"] for e in stored] == [e["text"] for e in batch]
    assert sorted(e["seq"] for r in results for e in r) == list(range(1, total + 1))
    assert [e["seq"] for e in await stores.trackers.events("busy")] == list(range(1, total + 1))


async def test_two_workers_appending_to_one_conversation_get_distinct_seqs(backend: Backend) -> None:
    worker_a, worker_b = backend.open(), backend.open()

    results = await asyncio.gather(
        *(worker.trackers.append("shared", [ev.user(f"{name}{i}")])
          for i in range(25) for worker, name in ((worker_a, "a"), (worker_b, "b")))
    )

    seqs = [r[0]["seq"] for r in results]
    assert sorted(seqs) == list(range(1, 51))
    events = await worker_b.trackers.events("shared")
    assert sorted(e["text"] for e in events) == sorted(f"{n}{i}" for i in range(25) for n in "ab")


async def test_events_replay_after_seq_with_limit(stores: Stores) -> None:
    await stores.trackers.append("c", [ev.bot(str(i)) for i in range(1, 11)])

    def texts(events: list[dict[str, Any]]) -> list[str]:
        return [e["text"] for e in events]

    assert texts(await stores.trackers.events("c", after_seq=7)) == ["8", "9", "10"]
    assert texts(await stores.trackers.events("c", after_seq=3, limit=2)) == ["4", "5"]
    assert texts(await stores.trackers.events("c", limit=1)) == ["1"]
    assert await stores.trackers.events("c", after_seq=10) == []
    assert await stores.trackers.events("c", limit=0) == []
    assert await stores.trackers.events("unknown") == []
    tracker = Tracker.from_events("c", await stores.trackers.events("c"))
    assert tracker.last_seq == 10


async def test_bad_events_are_refused_and_nothing_is_written(stores: Stores) -> None:
    with pytest.raises(ValueError, match="not an event"):
        await stores.trackers.append("c", [ev.bot("ok"), {"text": "no event name"}])
    with pytest.raises(TypeError):
        await stores.trackers.append("c", [ev.bot("ok"), {"event": "bot", "data": object()}])
    assert await stores.trackers.append("c", []) == []
    assert not await stores.trackers.exists("c")
    assert await stores.trackers.conversations() == []


async def test_conversations_newest_activity_first(stores: Stores) -> None:
    t = stores.trackers
    await t.append("a", [ev.user("hi", input_channel="widget")])
    await asyncio.sleep(0.002)
    await t.append("b", [ev.action("action_listen")])
    await asyncio.sleep(0.002)
    await t.append("c", [ev.user("no channel yet")])
    await t.append("c", [ev.user("now", input_channel="messenger"), ev.user("x", input_channel="wechat")])
    await asyncio.sleep(0.002)
    await t.append("a", [ev.user("again", input_channel="wechat"), ev.bot("hello")])

    listing = await t.conversations()

    assert [c["conversation_id"] for c in listing] == ["a", "c", "b"]
    a, c, b = listing
    assert set(a) == {"conversation_id", "channel", "created_at", "updated_at", "last_seq"}
    assert (a["channel"], b["channel"], c["channel"]) == ("widget", None, "messenger")
    assert (a["last_seq"], b["last_seq"], c["last_seq"]) == (3, 1, 3)
    assert a["created_at"] < b["created_at"] < a["updated_at"]
    assert [x["conversation_id"] for x in await t.conversations(limit=1, offset=1)] == ["c"]
    assert await t.conversations(limit=5, offset=3) == []


async def test_meta_merges_json_values(stores: Stores) -> None:
    assert await stores.trackers.get_meta("c") == {}
    await stores.trackers.set_meta("c", channel="wechat", sender="oABC", language="zh")
    await stores.trackers.set_meta("c", language="en", customer={"id": 7, "vip": True}, note=None)

    assert await stores.trackers.get_meta("c") == {
        "channel": "wechat", "sender": "oABC", "language": "en",
        "customer": {"id": 7, "vip": True}, "note": None,
    }
    assert await stores.trackers.get_meta("other") == {}


async def test_claim_message_id_dedupes(backend: Backend, stores: Stores) -> None:
    other = backend.open()
    assert await stores.trackers.claim_message_id("wechat:msg-1")
    assert not await stores.trackers.claim_message_id("wechat:msg-1")
    assert not await other.trackers.claim_message_id("wechat:msg-1")  # another worker sees it too
    assert await other.trackers.claim_message_id("wechat:msg-2")

    claims = await asyncio.gather(*(w.trackers.claim_message_id("race") for w in (stores, other) * 5))
    assert sorted(claims) == [False] * 9 + [True]

    assert await stores.trackers.claim_message_id("short", ttl_s=0.2)
    assert not await stores.trackers.claim_message_id("short", ttl_s=0.2)
    await asyncio.sleep(0.3)
    assert await stores.trackers.claim_message_id("short", ttl_s=0.2)  # expired: seen as new again


# -- locks ---------------------------------------------------------------------------------------------------


async def test_lock_serialises_coroutines_and_workers(backend: Backend, stores: Stores) -> None:
    for first, second in ((stores, stores), (stores, backend.peer(stores))):
        log: list[str] = []
        holding = asyncio.Event()

        async def hold(s: Stores, name: str, seconds: float, log: list[str] = log,
                       holding: asyncio.Event = holding) -> None:
            async with s.trackers.lock("conv"):
                log.append(f"{name} in")
                holding.set()
                await asyncio.sleep(seconds)
                log.append(f"{name} out")

        task = asyncio.create_task(hold(first, "a", 0.15))
        await holding.wait()
        started = time.monotonic()
        await hold(second, "b", 0)
        await task

        assert log == ["a in", "a out", "b in", "b out"]
        assert time.monotonic() - started >= 0.1  # b really waited for a

    async with stores.trackers.lock("conv"), stores.trackers.lock("another conversation"):
        pass  # different conversations do not block each other


async def test_lock_timeout_raises_and_release_on_error(backend: Backend, stores: Stores) -> None:
    peer = backend.peer(stores)
    holding, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with stores.trackers.lock("conv"):
            holding.set()
            await release.wait()

    task = asyncio.create_task(hold())
    await holding.wait()
    started = time.monotonic()
    with pytest.raises(LockTimeout, match="conv"):
        async with peer.trackers.lock("conv", timeout_s=0.2):
            pytest.fail("got a lock someone else holds")
    assert 0.15 <= time.monotonic() - started < 1.0
    release.set()
    await task

    with pytest.raises(RuntimeError, match="boom"):
        async with peer.trackers.lock("conv", timeout_s=1):
            raise RuntimeError("boom")
    async with stores.trackers.lock("conv", timeout_s=0.5):
        pass  # released despite the error


async def test_idle_local_locks_are_dropped() -> None:
    locks = LocalLocks()
    async with locks.hold("a", 1), locks.hold("b", 1):
        waiter = asyncio.create_task(asyncio.wait_for(locks.hold("a", 0.05).__aenter__(), 1))
        with pytest.raises(LockTimeout):
            await waiter
        assert len(locks) == 2
    assert len(locks) == 0  # one entry per conversation ever seen would be a slow leak


@pytest.mark.redis
async def test_redis_lock_of_a_crashed_worker_expires(redis_url: str, tmp_path: Path) -> None:
    prefix = f"test-{uuid4().hex[:12]}:"
    stores = create_stores(redis_url, tmp_path / "unused.db", redis_prefix=prefix)
    raw = aioredis.Redis.from_url(redis_url)
    try:
        await raw.set(f"{prefix}conv:c:lock", "token-of-a-dead-worker", px=300)
        started = time.monotonic()
        async with stores.trackers.lock("c", timeout_s=3):
            assert time.monotonic() - started >= 0.2
    finally:
        await raw.aclose()
        await stores.close()


@pytest.mark.redis
async def test_redis_lock_is_kept_alive_while_held(redis_url: str, tmp_path: Path) -> None:
    prefix = f"test-{uuid4().hex[:12]}:"
    worker_a = create_stores(redis_url, tmp_path / "unused.db", redis_prefix=prefix, lock_ttl_s=0.2)
    worker_b = create_stores(redis_url, tmp_path / "unused.db", redis_prefix=prefix, lock_ttl_s=0.2)
    try:
        async with worker_a.trackers.lock("c"):
            with pytest.raises(LockTimeout):
                async with worker_b.trackers.lock("c", timeout_s=0.6):  # three TTLs: renewal must happen
                    pytest.fail("the lock expired while its holder was working")
        async with worker_b.trackers.lock("c", timeout_s=0.5):
            pass
    finally:
        await worker_a.close()
        await worker_b.close()


# -- event bus -----------------------------------------------------------------------------------------------


async def test_appended_and_published_events_reach_subscribers(backend: Backend, stores: Stores) -> None:
    listener = backend.peer(stores)

    async with listener.bus.subscribe() as subscription:
        stored = await stores.trackers.append("c1", [ev.user("你好"), ev.bot("hi")])
        await stores.trackers.append("c2", [ev.action("action_listen")])
        await stores.bus.publish("c1", {"event": "typing", "on": True})

        got = [await next_item(subscription) for _ in range(4)]

    assert got[:2] == [("c1", stored[0]), ("c1", stored[1])]
    assert got[2][0] == "c2" and got[2][1]["seq"] == 1
    assert got[3] == ("c1", {"event": "typing", "on": True})
    assert listener.bus.subscriber_count == 0  # left `async with`: unsubscribed


@pytest.mark.redis
async def test_a_turns_events_reach_the_other_workers_as_one_redis_message(redis_url: str, tmp_path: Path) -> None:
    """Every worker reads every message on the channel: a turn's events travel together, once."""
    prefix = f"test-{uuid4().hex[:12]}:"
    stores = create_stores(redis_url, tmp_path / "unused.db", redis_prefix=prefix)
    raw = aioredis.from_url(redis_url, decode_responses=True)
    pubsub = raw.pubsub()
    try:
        await pubsub.subscribe(f"{prefix}events")
        confirmation = await pubsub.get_message(timeout=10)  # live before the append, even on a loaded machine
        assert confirmation is not None and confirmation["type"] == "subscribe"
        stored = await stores.trackers.append("c", [ev.user("几天到"), ev.action("utter_ship"), ev.bot("3 天")])
        first = await pubsub.get_message(ignore_subscribe_messages=True, timeout=10)
        assert first is not None, "the turn's events never reached the channel"
        messages = [first["data"]] + [m async for m in _messages(pubsub, seconds=0.5)]
    finally:
        await pubsub.aclose()
        await raw.aclose()
        await stores.close()
    assert len(messages) == 1
    assert strict_json.loads(messages[0]) == {"conversation_id": "c", "events": stored}


async def _messages(pubsub: Any, seconds: float) -> AsyncIterator[str]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if message is not None:
            yield message["data"]


async def test_subscription_ends_on_break_cancel_and_close(backend: Backend, stores: Stores) -> None:
    bus = stores.bus
    async with bus.subscribe():
        pass  # for Redis: make sure the worker's subscription is live before counting on it

    async def first_event() -> tuple[str, dict[str, Any]]:
        async for item in bus.subscribe():
            return item  # leaves the loop like a `break`
        raise AssertionError("no event")

    task = asyncio.create_task(first_event())
    await asyncio.sleep(0.05)
    await stores.trackers.append("c", [ev.bot("one")])
    assert (await asyncio.wait_for(task, 2))[1]["text"] == "one"
    gc.collect()
    assert bus.subscriber_count == 0

    polled = bus.subscribe()
    assert await polled.get(timeout=0.05) is None  # a timed-out get() keeps the subscription...
    await stores.trackers.append("c", [ev.bot("polled")])
    item = await polled.get(timeout=2)
    assert item is not None and item[1]["text"] == "polled"
    await polled.aclose()
    assert polled.closed and await polled.get() is None
    assert bus.subscriber_count == 0

    waiting = asyncio.create_task(next_item(bus.subscribe(), timeout=5))  # ...a cancelled anext() ends it
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert bus.subscriber_count == 0

    received: list[str] = []

    async def consume() -> None:
        async for _cid, event in bus.subscribe():
            received.append(event["text"])

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    await stores.trackers.append("c", [ev.bot("two")])
    await asyncio.sleep(0.1)
    await stores.close()
    await asyncio.wait_for(consumer, 2)  # the loop ended by itself
    assert received == ["two"]


@pytest.mark.redis
async def test_redis_bus_resubscribes_after_losing_its_connection(redis_url: str, tmp_path: Path) -> None:
    prefix = f"test-{uuid4().hex[:12]}:"
    stores = create_stores(redis_url, tmp_path / "unused.db", redis_prefix=prefix)
    raw = aioredis.Redis.from_url(redis_url)
    try:
        async with stores.bus.subscribe() as subscription:
            assert await raw.client_kill_filter(_type="pubsub") >= 1  # the worker's subscription drops
            deadline = time.monotonic() + 3
            # Events published while disconnected are lost (subscribers replay with events(after_seq)).
            while (await stores.bus.publish("c", {"event": "ping"}) or
                   await subscription.get(timeout=0.1)) is None:
                assert time.monotonic() < deadline, "the bus did not resubscribe"
            stored = await stores.trackers.append("c", [ev.bot("after the reconnect")])
            while (item := await subscription.get(timeout=2)) != ("c", stored[0]):
                assert item == ("c", {"event": "ping"})
    finally:
        await raw.aclose()
        await stores.close()


# -- persistence ---------------------------------------------------------------------------------------------


@pytest.mark.redis
async def test_redis_work_beyond_the_pool_waits_for_a_connection_instead_of_failing(redis_url: str,
                                                                                     tmp_path: Path) -> None:
    """200 shoppers at once on a pool of 4 connections: each waits its turn; none gets an error."""
    stores = create_stores(f"{redis_url}?max_connections=4", tmp_path / "unused.db",
                           redis_prefix=f"test-{uuid4().hex[:12]}:")

    async def turn(i: int) -> int:
        async with stores.trackers.lock(f"shopper-{i}"):
            await stores.trackers.append(f"shopper-{i}", [ev.user("hello")])
            return await stores.kv.incr("tickets")

    try:
        async with asyncio.timeout(60):
            numbers = await asyncio.gather(*(turn(i) for i in range(200)))
        assert sorted(numbers) == list(range(1, 201))
        assert len(await stores.trackers.conversations(limit=500)) == 200
    finally:
        await stores.close()


async def test_everything_survives_a_restart(backend: Backend) -> None:
    first = backend.open()
    stored = await first.trackers.append("c", [ev.user("退货怎么办?", input_channel="wechat"), ev.bot("...")])
    await first.trackers.set_meta("c", language="zh")
    assert await first.trackers.claim_message_id("m1")
    await first.kv.set("agent:alice", {"name": "Alice", "skills": ["zh", "en"]})
    await first.kv.zadd("queue:zh", "c", 3.5)
    listing = await first.trackers.conversations()
    await first.close()

    second = backend.open()

    assert await second.trackers.events("c") == stored
    assert await second.trackers.conversations() == listing
    assert await second.trackers.get_meta("c") == {"language": "zh"}
    assert not await second.trackers.claim_message_id("m1")
    assert await second.kv.get("agent:alice") == {"name": "Alice", "skills": ["zh", "en"]}
    assert await second.kv.zrange("queue:zh") == [("c", 3.5)]
    assert [e["seq"] for e in await second.trackers.append("c", [ev.bot("more")])] == [3]


async def test_erase_deletes_one_conversation_and_nothing_else(stores: Stores) -> None:
    await stores.trackers.append("web:a*b", [ev.user("my address is 5 Elm St"), ev.bot("thanks")])
    await stores.trackers.set_meta("web:a*b", language="en", sender="5 Elm St")
    other = await stores.trackers.append("web:a", [ev.user("keep me")])
    await stores.trackers.set_meta("web:a", language="zh")
    for key in ("out:web:a*b:1", "out:web:a*b:2", "out:web:a:1", "wechat:in:42"):
        assert await stores.trackers.claim_message_id(key)

    assert await stores.trackers.erase("web:a*b") == 2
    assert await stores.trackers.forget_message_ids("out:web:a*b:") == 2  # a glob character is just a character

    assert await stores.trackers.events("web:a*b") == [] and not await stores.trackers.exists("web:a*b")
    assert await stores.trackers.get_meta("web:a*b") == {}
    assert [c["conversation_id"] for c in await stores.trackers.conversations()] == ["web:a"]
    assert await stores.trackers.events("web:a") == other
    assert await stores.trackers.get_meta("web:a") == {"language": "zh"}
    assert await stores.trackers.claim_message_id("out:web:a*b:1")  # a new conversation under the id is answered
    assert not await stores.trackers.claim_message_id("out:web:a:1")  # the others' claims stay
    assert not await stores.trackers.claim_message_id("wechat:in:42")
    assert await stores.trackers.erase("web:a*b") == 0  # erasing again is harmless
    stored = await stores.trackers.append("web:a*b", [ev.user("hello again")])
    assert stored[0]["seq"] == 1  # starts afresh


async def test_sqlite_erase_leaves_no_trace_of_the_text_in_its_files(tmp_path: Path) -> None:
    stores = create_stores(None, tmp_path / "kefu.db")
    try:
        await stores.trackers.append("c1", [ev.user("my card is 4111-1111-1111-1111"), ev.bot("noted")])
        await stores.trackers.append("c2", [ev.user("keep this one")])
        await stores.kv.set("doc", {"note": "card 4111-1111-1111-1111"})
        await stores.kv.delete("doc")
        await stores.trackers.erase("c1")
        files = b"".join(f.read_bytes() for f in tmp_path.iterdir() if f.name.startswith("kefu.db"))
        assert b"4111-1111-1111-1111" not in files  # overwritten (secure_delete) and gone from the log
        assert b"keep this one" in files
    finally:
        await stores.close()


async def test_sqlite_creates_its_directory_and_rejects_unknown_urls(tmp_path: Path) -> None:
    stores = create_stores(None, tmp_path / "a" / "b" / "kefu.db")
    await stores.close()
    assert (tmp_path / "a" / "b" / "kefu.db").exists()
    with pytest.raises(ValueError, match="postgres"):
        create_stores("postgres://user:secret@db/kefu", tmp_path / "kefu.db")


# -- key/value -----------------------------------------------------------------------------------------------


async def test_key_value_documents_and_prefix_scan(stores: Stores) -> None:
    kv = stores.kv
    assert await kv.get("ticket:1") is None
    for key in ("ticket:2", "ticket:1", "tickets", "agent:bob", "ticket:10"):
        await kv.set(key, {"key": key})
    await kv.set("ticket:1", {"key": "ticket:1", "status": "open"})

    assert await kv.get("ticket:1") == {"key": "ticket:1", "status": "open"}
    assert [k for k, _ in await kv.scan("ticket:")] == ["ticket:1", "ticket:10", "ticket:2"]
    assert [k for k, _ in await kv.scan("")] == ["agent:bob", "ticket:1", "ticket:10", "ticket:2", "tickets"]
    await kv.delete("ticket:10")
    await kv.delete("never-there")
    assert await kv.scan("ticket:1") == [("ticket:1", {"key": "ticket:1", "status": "open"})]
    with pytest.raises(TypeError):
        await kv.set("bad", ["not", "a", "dict"])  # type: ignore[arg-type]


async def test_sorted_sets_order_by_score(stores: Stores) -> None:
    kv = stores.kv
    assert await kv.zrange("queue") == []
    await kv.zadd("queue", "c3", 30)
    await kv.zadd("queue", "c1", 10)
    await kv.zadd("queue", "c2", 20.5)
    await kv.zadd("queue", "c3", 5)  # re-adding moves it
    await kv.zadd("other", "x", 1)

    assert await kv.zrange("queue") == [("c3", 5.0), ("c1", 10.0), ("c2", 20.5)]
    await kv.zrem("queue", "c1")
    await kv.zrem("queue", "missing")
    assert await kv.zrange("queue") == [("c3", 5.0), ("c2", 20.5)]


async def test_cas_lets_exactly_one_of_two_concurrent_claims_win(backend: Backend, stores: Stores) -> None:
    agent_a, agent_b = stores.kv, backend.open().kv
    for round_ in range(10):
        key = f"claim:{round_}"
        wins = await asyncio.gather(
            agent_a.cas(key, None, {"agent": "a"}), agent_b.cas(key, None, {"agent": "b"})
        )
        assert sorted(wins) == [False, True]
        assert await agent_a.get(key) == {"agent": "a" if wins[0] else "b"}

    current = await agent_a.get("claim:0")
    assert current is not None
    assert not await agent_b.cas("claim:0", {"agent": "someone else"}, {"agent": "b"})
    assert await agent_b.cas("claim:0", current, {**current, "state": "closed"})
    assert not await agent_a.cas("claim:0", current, {"agent": "a"})  # stale view loses
    assert await agent_a.cas("claim:0", {**current, "state": "closed"}, None)  # None deletes
    assert await agent_a.get("claim:0") is None
    assert [k for k, _ in await agent_a.scan("claim:")] == [f"claim:{i}" for i in range(1, 10)]


# -- counters ------------------------------------------------------------------------------------------------

COUNTING_PROCESS = """
import asyncio, sys
from bot.stores import create_stores

async def main(url, path, prefix, times):
    stores = create_stores(url or None, path, redis_prefix=prefix)
    numbers = await asyncio.gather(*(stores.kv.incr("tickets") for _ in range(int(times))))
    await stores.close()
    print(" ".join(map(str, numbers)))

asyncio.run(main(*sys.argv[1:]))
"""


async def test_counter_gives_every_worker_its_own_number_with_no_gaps(backend: Backend) -> None:
    worker_a, worker_b = backend.open(), backend.open()

    numbers = await asyncio.gather(*(worker.kv.incr("tickets") for _ in range(100) for worker in (worker_a, worker_b)))

    assert sorted(numbers) == list(range(1, 201))
    assert await worker_b.kv.incr("tickets") == 201
    assert await worker_a.kv.incr("another") == 1  # counters are independent
    assert await worker_a.kv.scan("") == []  # and apart from the documents
    await worker_a.close()
    assert await backend.open().kv.incr("tickets") == 202  # kept across a restart


async def test_counter_is_atomic_across_processes(backend: Backend) -> None:
    """Four processes at once on one SQLite file or one Redis, 50 numbers each: 200 distinct, none skipped."""
    backend.open()  # creates the SQLite file and its tables once, before the processes race
    url, path, prefix = backend.where
    processes = [await asyncio.create_subprocess_exec(sys.executable, "-c", COUNTING_PROCESS, url or "", path,
                                                      prefix, "50", stdout=asyncio.subprocess.PIPE,
                                                      stderr=asyncio.subprocess.PIPE) for _ in range(4)]
    try:
        async with asyncio.timeout(60):  # a process that hangs fails the test instead of the run
            outputs = await asyncio.gather(*(p.communicate() for p in processes))
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err.decode()
    numbers = [int(n) for out, _ in outputs for n in out.split()]
    assert sorted(numbers) == list(range(1, 201))


async def test_counter_with_a_window_counts_parallel_increments_and_starts_again_after_it(backend: Backend) -> None:
    """Login failures: 200 at once from two workers are all counted; the window is fixed, then 0 again."""
    worker_a, worker_b = backend.open(), backend.open()

    numbers = await asyncio.gather(*(worker.kv.incr("failures:li", ttl_s=1.0)
                                     for _ in range(100) for worker in (worker_a, worker_b)))

    assert sorted(numbers) == list(range(1, 201))
    assert await worker_b.kv.get_counter("failures:li") == 200
    assert await worker_a.kv.get_counter("never-used") == 0
    await asyncio.sleep(1.2)  # increments did not extend the window
    assert await worker_a.kv.get_counter("failures:li") == 0
    assert await worker_b.kv.incr("failures:li", ttl_s=60) == 1  # a new window
    await worker_a.kv.delete_counter("failures:li")
    assert await worker_b.kv.get_counter("failures:li") == 0
    assert await worker_a.kv.incr("tickets") == 1 and await worker_a.kv.get_counter("tickets") == 1
    with pytest.raises(ValueError):
        await worker_a.kv.incr("failures:li", ttl_s=0)


async def test_sqlite_file_of_an_older_kefu_gets_counter_windows_and_keeps_its_counters(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID")
        old.execute("INSERT INTO counters VALUES ('tickets', 41)")
    stores = create_stores(None, path)
    try:
        assert await stores.kv.incr("tickets") == 42
        assert await stores.kv.incr("failures:li", ttl_s=60) == 1
    finally:
        await stores.close()


async def test_token_bucket_is_shared_by_workers_and_never_overdrawn(backend: Backend) -> None:
    """Rate limits: 40 takes at once from two workers on a burst of 10 give exactly 10 tokens (the embedded
    store keeps buckets in its worker's memory: one worker), then it refills at its rate."""
    worker_a = backend.open()
    worker_b = backend.peer(worker_a)
    waits = await asyncio.gather(*(worker.kv.take_token("rest:client:x", 0.01, 10)
                                   for _ in range(20) for worker in (worker_a, worker_b)))
    assert waits.count(0.0) == 10
    assert all(90 < wait <= 100 for wait in waits if wait)  # one token every 100 s, none spent on a refusal
    assert await worker_b.kv.take_token("rest:client:y", 0.01, 10) == 0.0  # buckets are independent
    assert await worker_a.kv.take_token("fast", 20, 1) == 0.0
    assert await worker_b.kv.take_token("fast", 20, 1) > 0
    await asyncio.sleep(0.1)  # 20 a second: one token again
    assert await worker_b.kv.take_token("fast", 20, 1) == 0.0
    assert await worker_a.kv.scan("") == []  # apart from the documents
    with pytest.raises(ValueError):
        await worker_a.kv.take_token("bad", 0, 1)
    # dropped (a conversation's data erased): full again, and gone from the store
    assert await worker_a.kv.take_token("rest:client:x", 0.01, 10) > 0
    assert await worker_a.kv.drop_token_bucket("rest:client:x") is True
    assert await worker_a.kv.drop_token_bucket("rest:client:x") is False
    assert await worker_a.kv.take_token("rest:client:x", 0.01, 10) == 0.0
