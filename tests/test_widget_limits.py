"""The chat bubble's rate limits on the shared limiter (bot/ratelimit.py; issue 14, "Limits hold under abuse"):
messages per conversation and per client address, new sessions per address; over a limit the shopper is told to
wait and nothing is stored; another shopper is not affected; two workers on Redis share one budget; a spoofed
X-Forwarded-For from an untrusted peer changes nothing; exempt addresses skip the limits.

The aiohttp test client connects from 127.0.0.1, a trusted proxy by default, so `X-Forwarded-For` stands for the
shopper's address behind it.
"""

from __future__ import annotations

from uuid import uuid4

import pytest

from tests.test_widget_ws import frames_until, origin, stored_events, widget_app


async def session_from(client, address: str | None = None):
    headers = {"Origin": origin(client), **({"X-Forwarded-For": address} if address else {})}
    return await client.post("/api/widget/session", json={}, headers=headers)


async def open_tab(client, address: str):
    """A new conversation's socket, from `address`: (ws, conversation_id)."""
    session = await (await session_from(client, address)).json()
    ws = await client.ws_connect("/api/widget/ws", origin=origin(client), headers={"X-Forwarded-For": address})
    await ws.send_json({"type": "hello", "token": session["token"], "last_seq": 0})
    await frames_until(ws, lambda f: f["type"] == "ready")
    return ws, session["conversation_id"]


async def send(ws, text: str) -> dict:
    """The ack or the error the message got."""
    msg_id = f"uuid-{uuid4().hex[:12]}"
    await ws.send_json({"type": "message", "client_msg_id": msg_id, "text": text})
    return (await frames_until(ws, lambda f: f["type"] in ("ack", "error") and f.get("client_msg_id") == msg_id))[-1]


async def user_texts(client, conversation_id: str) -> list[str]:
    return [e["text"] for e in await stored_events(client, conversation_id) if e["event"] == "user"]


async def test_one_address_is_limited_across_its_conversations_and_another_is_not(aiohttp_client, starter_model,
                                                                                 tmp_path):
    client = await aiohttp_client(widget_app(starter_model, tmp_path, client_messages_per_minute=1,
                                             client_message_burst=3))
    tab_a, cid_a = await open_tab(client, "198.51.100.7")
    tab_b, cid_b = await open_tab(client, "198.51.100.7")  # the same shopper's second conversation
    assert [(await send(tab, "hi"))["type"] for tab in (tab_a, tab_b, tab_a)] == ["ack"] * 3
    refused = await send(tab_b, "one more")
    assert refused["code"] == "rate_limited" and 0 < refused["retry_after_s"] <= 60
    other, cid_other = await open_tab(client, "203.0.113.9")
    assert (await send(other, "hello"))["type"] == "ack"
    assert await user_texts(client, cid_a) == ["hi", "hi"]
    assert await user_texts(client, cid_b) == ["hi"]  # the refused message was not stored
    assert await user_texts(client, cid_other) == ["hello"]
    for ws in (tab_a, tab_b, other):
        await ws.close()


async def test_new_sessions_per_address_get_429_with_retry_after(aiohttp_client, starter_model, tmp_path):
    client = await aiohttp_client(widget_app(starter_model, tmp_path))
    statuses = [(await session_from(client, "198.51.100.8")).status for _ in range(11)]
    assert statuses == [200] * 10 + [429]  # a burst of 10, then 30 a minute
    refused = await session_from(client, "198.51.100.8")
    assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1
    assert (await refused.json())["error"] == "too many new conversations from this address; try again in a minute"
    assert (await session_from(client, "198.51.100.9")).status == 200


async def test_a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(aiohttp_client, starter_model, tmp_path,
                                                                        monkeypatch):
    monkeypatch.setenv("KEFU_TRUSTED_PROXIES", "none")
    client = await aiohttp_client(widget_app(starter_model, tmp_path))
    statuses = [(await session_from(client, f"203.0.113.{n}")).status for n in range(11)]
    assert statuses == [200] * 10 + [429]


async def test_exempt_addresses_skip_the_limits(aiohttp_client, starter_model, tmp_path, monkeypatch):
    monkeypatch.setenv("KEFU_RATE_LIMIT_EXEMPT", "192.0.2.0/24")
    client = await aiohttp_client(widget_app(starter_model, tmp_path, messages_per_minute=1, message_burst=1))
    assert {(await session_from(client, "192.0.2.5")).status for _ in range(15)} == {200}
    ws, cid = await open_tab(client, "192.0.2.5")
    assert [(await send(ws, f"m{n}"))["type"] for n in range(3)] == ["ack"] * 3
    assert await user_texts(client, cid) == ["m0", "m1", "m2"]
    await ws.close()


@pytest.mark.redis
async def test_two_workers_on_redis_share_a_conversations_budget(aiohttp_client, starter_model, tmp_path, redis_url):
    prefix = f"test-{uuid4().hex[:10]}"
    a, b = [await aiohttp_client(widget_app(starter_model, tmp_path / name, redis_url, prefix, messages_per_minute=1,
                                            message_burst=2)) for name in "ab"]
    session = await (await session_from(a, "198.51.100.30")).json()
    tabs = []
    for worker in (a, b):  # one conversation, a tab on each worker
        ws = await worker.ws_connect("/api/widget/ws", origin=origin(worker))
        await ws.send_json({"type": "hello", "token": session["token"], "last_seq": 0})
        await frames_until(ws, lambda f: f["type"] == "ready")
        tabs.append(ws)
    results = [(await send(ws, f"m{n}")).get("code", "ack") for n, ws in enumerate(tabs + tabs)]
    assert results == ["ack", "ack", "rate_limited", "rate_limited"]
    assert await user_texts(a, session["conversation_id"]) == ["m0", "m1"]
    for ws in tabs:
        await ws.close()
