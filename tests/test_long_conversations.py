"""Long conversations: thousands of events in one session still get the right answers, on SQLite and on a real
Redis, while a worker keeps recent trackers in memory (bot/dialogue/tracker_cache.py) and the policies see only the
recent past (bot/dialogue/history.py).

Conversations are made long by appending copies of their own real turns straight to the store, as another worker
would: a few seconds instead of minutes of turns. How fast a long turn is stays with the benchmark
(benchmarks/bench_long_conversation.py); these tests check what a shopper would notice.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.app_keys import AGENT, STORES
from bot.dialogue import events as ev
from bot.dialogue.history import MAX_ACTIONS
from bot.dialogue.states import HISTORY_CUT
from bot.dialogue.tracker import Tracker
from bot.dialogue.tracker_cache import TrackerCache
from bot.stores.sqlite import open_sqlite_stores

LONG = 3000  # events: well past the policies' window (MAX_ACTIONS actions, a few hundred events)
_ids = itertools.count()


async def say(client: TestClient, sender: str, text: str, message_id: str | None = None) -> list[str]:
    headers = {"X-Message-Id": message_id} if message_id else {}
    resp = await client.post("/webhooks/rest/webhook", json={"sender": sender, "message": text}, headers=headers)
    assert resp.status == 200, await resp.text()
    return [m.get("text") or "" for m in await resp.json()]


def last_turn(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events of the conversation's latest user message and the bot's answer to it."""
    start = max(i for i, e in enumerate(events) if e["event"] == "user")
    return events[start:]


async def grow(client: TestClient, sender: str, template: list[dict[str, Any]], size: int) -> int:
    """Append copies of `template` (events as stored) until the conversation holds `size` events."""
    trackers = client.app[STORES].trackers
    length = len(await trackers.events(sender))
    while length < size:
        batch = [{**{k: v for k, v in e.items() if k not in ("seq", "timestamp")},
                  **({"message_id": f"copy-{next(_ids)}"} if e.get("message_id") else {})} for e in template]
        length = (await trackers.append(sender, batch))[-1]["seq"]
    return length


async def test_a_long_conversation_answers_as_a_short_one(kefu_app) -> None:
    client = await kefu_app()
    fresh = await say(client, "short", "what does delivery cost")
    assert fresh, "the starter bot answers the question"
    first = await say(client, "long", "how long does shipping take", message_id="first")
    await say(client, "long", "what does delivery cost")
    template = last_turn(await client.app[STORES].trackers.events("long"))
    assert await grow(client, "long", template, LONG) >= LONG

    assert await say(client, "long", "what does delivery cost") == fresh
    # a redelivery of the conversation's very first message, thousands of events later, is still recognised:
    # it gets that turn's stored answer and is not processed (or stored) again
    before = len(await client.app[STORES].trackers.events("long"))
    assert await say(client, "long", "how long does shipping take", message_id="first") == first
    assert len(await client.app[STORES].trackers.events("long")) == before


async def test_a_form_and_its_slots_survive_thousands_of_events(kefu_app) -> None:
    client = await kefu_app()
    cid = "form-long"
    await say(client, cid, "where is my order")
    asked = await say(client, cid, "KF20240001")  # order number taken; the form asks for the phone or e-mail
    assert asked
    # a question in between is answered and the form asks for the contact again: the turn to copy
    await say(client, cid, "how long does shipping take")
    template = last_turn(await client.app[STORES].trackers.events(cid))
    assert any(e["event"] == "action_execution_rejected" for e in template), "the copied turn interrupts the form"
    await grow(client, cid, template, LONG)

    tracker = await client.app[AGENT].tracker(cid)
    assert tracker.applied_events()[0]["event"] == HISTORY_CUT, "the policies see only the recent past"
    replies = await say(client, cid, "13800138001")  # the phone number on order KF20240001
    assert "SF1402837561924" in " ".join(replies), replies  # the order's status, with its tracking number
    assert (await client.app[AGENT].tracker(cid)).active_loop is None, "the form is done"


async def test_what_another_worker_writes_is_seen(kefu_app) -> None:
    """Two workers on one store (one Redis, or one SQLite file as `kefu shell` next to `kefu run`): each keeps
    trackers in memory, and still continues what the other one did."""
    one = await kefu_app()
    other = await kefu_app()
    cid = "two-workers"
    await say(one, cid, "how long does shipping take")
    await say(one, cid, "what does delivery cost")  # `one` holds the conversation in memory now
    assert one.app[AGENT].tracker_cache.hits >= 1

    asked = await say(other, cid, "where is my order", message_id="on-other")  # the form starts on the other
    assert await say(one, cid, "where is my order", message_id="on-other") == asked, "a redelivery, not a new turn"
    await say(one, cid, "KF20240001")
    replies = await say(other, cid, "13800138001")
    assert "SF1402837561924" in " ".join(replies), replies
    stored = await one.app[STORES].trackers.events(cid)
    assert [e["seq"] for e in stored] == list(range(1, len(stored) + 1))
    assert sum(e["event"] == "user" for e in stored) == 5


# -- the cache on its own, on a real SQLite store ----------------------------------------------------------------

def turn(i: int) -> list[dict[str, Any]]:
    return [ev.user(f"hello {i}", {"intent": {"name": "greet", "confidence": 1.0}}, message_id=f"m{i}"),
            ev.action("utter_greet"), ev.bot(f"hi {i}"), ev.action("action_listen")]


@pytest.fixture
async def sqlite_stores(tmp_path):
    stores = open_sqlite_stores(tmp_path / "kefu.db")
    yield stores
    await stores.close()


async def test_the_cache_stays_within_its_bound_and_drops_idle_conversations(sqlite_stores, starter_model) -> None:
    from bot.model import load_model

    domain = load_model(starter_model).domain
    now = [0.0]
    cache = TrackerCache(sqlite_stores.trackers, domain, max_events=400, idle_s=60, clock=lambda: now[0])
    for c in range(10):
        for i in range(25):
            await sqlite_stores.trackers.append(f"c{c}", turn(i))  # 100 events each
        loaded = await cache.load(f"c{c}")
        assert len(loaded.events) == 100
        assert cache.cached_events <= 400
    assert len(cache) == 4 and cache.misses == 10
    assert (await cache.load("c9")).events[-1]["seq"] == 100 and cache.hits == 1  # the most recent stays

    big = "big"
    for i in range(150):
        await sqlite_stores.trackers.append(big, turn(i))
    assert len((await cache.load(big)).events) == 600  # served right, but larger than the bound: not kept
    assert cache.cached_events <= 400

    now[0] += 61
    await cache.load("c9")
    assert len(cache) == 1 and cache.misses == 12, "idle conversations were dropped"


async def test_the_cache_follows_the_store_and_notices_a_rewrite(sqlite_stores, starter_model) -> None:
    from bot.model import load_model

    domain = load_model(starter_model).domain
    trackers = sqlite_stores.trackers
    cache = TrackerCache(trackers, domain)
    await trackers.append("c", [*turn(0), ev.slot("order_id", "KF20240001")])
    assert (await cache.load("c")).tracker.slots["order_id"] == "KF20240001"

    await trackers.append("c", [*turn(1), ev.slot("order_id", "KF20240002")])  # another writer
    loaded = await cache.load("c")
    assert cache.hits == 1 and [e["seq"] for e in loaded.events] == list(range(1, 11))
    assert loaded.tracker.slots["order_id"] == "KF20240002" and loaded.message_ids["m1"] == 5

    loaded.tracker.apply(ev.slot("order_id", "changed by a turn that failed"))  # a copy: the cache is not touched
    assert (await cache.load("c")).tracker.slots["order_id"] == "KF20240002"

    # the conversation was erased and begun again with as many events: the cache reads it anew
    await trackers._db.run(lambda: trackers._db.conn.execute("DELETE FROM events WHERE conversation_id = 'c'"))
    await trackers.append("c", [*turn(7), ev.slot("order_id", None), *turn(8), ev.slot("order_id", None)])
    loaded = await cache.load("c")
    assert loaded.tracker.slots["order_id"] is None and "m7" in loaded.message_ids and "m1" not in loaded.message_ids
    cache.forget("c")
    assert len(cache) == 0 and cache.cached_events == 0


# -- the window: the policies decide on the recent past exactly as on the whole history ------------------------

async def test_the_policies_decide_the_same_on_the_window_as_on_the_whole_history(kefu_app, monkeypatch) -> None:
    monkeypatch.setenv("KEFU_RATE_LIMIT_EXEMPT", "127.0.0.0/8")  # 60 quick turns in one conversation: not a flood
    client = await kefu_app()
    agent = client.app[AGENT]
    cid = "window"
    messages = ["hello", "where is my order", "how long does shipping take", "KF20240001", "cancel",
                "what does delivery cost", "I want to return something", "which payment methods do you accept",
                "thanks", "blorp zzz", "can I get an invoice", "bye"]
    for i in range(5 * len(messages)):
        await say(client, cid, messages[i % len(messages)])
    events = await client.app[STORES].trackers.events(cid)
    start = max(i for i, e in enumerate(events) if e["event"] in ("session_started", "restart"))
    # every point where the engine asks the policies: just before an action
    before_actions = [i - 1 for i, e in enumerate(events) if e["event"] == "action" and i > start + 1]
    compared = 0
    for end in before_actions[-120:]:
        window = Tracker.from_events(cid, events[: end + 1], agent.domain).applied_events()
        if window[0]["event"] != HISTORY_CUT:
            continue
        assert sum(e["event"] == "action" for e in window) <= 2 * MAX_ACTIONS, "a window of the recent past"
        for use_stories in (True, False):
            assert agent.engine.policies.predict(window, use_stories) == agent.engine.policies.predict(
                events[start : end + 1], use_stories), f"at event {end}"
        compared += 1
    assert compared >= 60, "the conversation was long enough to cut its history"
