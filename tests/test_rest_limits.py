"""Rate limits on the REST channel (issue 14, "Limits hold under abuse"): per client address and per conversation,
429 with Retry-After and nothing stored when over; one client's flood does not limit another; workers on Redis
share one budget; the client address cannot be chosen by the client (X-Forwarded-For only from trusted proxies).

Each test runs on SQLite and on a real Redis (`kefu_app`, conftest.py). The aiohttp test client connects from
127.0.0.1, a trusted proxy by default, so `X-Forwarded-For` stands for the shopper's address behind it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import uuid4

import pytest

from bot.app_keys import STORES

ROOT = Path(__file__).resolve().parent.parent
REST = "/webhooks/rest/webhook"


async def send(client, sender: str, text: str = "hello", address: str | None = None):
    headers = {"X-Forwarded-For": address} if address else {}
    return await client.post(REST, json={"sender": sender, "message": text}, headers=headers)


async def user_texts(client, sender: str) -> list[str]:
    events = await client.app[STORES].trackers.events(sender)
    return [e["text"] for e in events if e.get("event") == "user"]


@pytest.fixture
def limits(monkeypatch):
    """REST limits small enough to reach in a test, refilling too slowly to matter within one."""

    def set_limits(client_burst: int = 100, conversation_burst: int = 100, **env: str) -> None:
        monkeypatch.setenv("REST_CLIENT_BURST", str(client_burst))
        monkeypatch.setenv("REST_CLIENT_PER_MINUTE", "1")
        monkeypatch.setenv("REST_CONVERSATION_BURST", str(conversation_burst))
        monkeypatch.setenv("REST_CONVERSATION_PER_MINUTE", "1")
        for name, value in env.items():
            monkeypatch.setenv(name, value)

    return set_limits


async def test_a_client_over_its_limit_gets_429_with_retry_after_and_nothing_is_stored(kefu_app, limits):
    limits(client_burst=3)
    client = await kefu_app()
    for n in range(3):
        assert (await send(client, f"c{n}", address="198.51.100.7")).status == 200
    refused = await send(client, "c3", "my order KF20240001", address="198.51.100.7")
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) >= 1  # 1 a minute: the next token is up to a minute away
    body = await refused.json()
    assert body["error"] == "too many messages from this address; wait and send again"
    assert 0 < body["retry_after_s"] <= 60
    assert not await client.app[STORES].trackers.exists("c3")  # nothing of it was kept
    # another shopper, at another address, is not affected
    assert (await send(client, "c4", address="203.0.113.9")).status == 200
    assert await user_texts(client, "c4") == ["hello"]


async def test_a_conversation_over_its_limit_gets_429_whichever_address_it_comes_from(kefu_app, limits):
    limits(conversation_burst=2)
    client = await kefu_app()
    assert (await send(client, "chatty", "one", address="198.51.100.1")).status == 200
    assert (await send(client, "chatty", "two", address="198.51.100.2")).status == 200
    refused = await send(client, "chatty", "three", address="198.51.100.3")
    assert refused.status == 429
    assert (await refused.json())["error"] == "too many messages in this conversation; wait and send again"
    assert await user_texts(client, "chatty") == ["one", "two"]
    # the same address may still write in another conversation
    assert (await send(client, "quiet", "hi", address="198.51.100.3")).status == 200


async def test_a_parallel_burst_cannot_overdraw_the_budget(kefu_app, limits):
    limits(client_burst=5)
    client = await kefu_app()
    statuses = [r.status for r in await asyncio.gather(*(send(client, f"p{n}", address="198.51.100.8")
                                                         for n in range(12)))]
    assert sorted(statuses) == [200] * 5 + [429] * 7
    stored = [n for n in range(12) if await client.app[STORES].trackers.exists(f"p{n}")]
    assert len(stored) == 5


async def test_a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(kefu_app, limits):
    """Loopback not trusted: the test client is then an ordinary client, whatever X-Forwarded-For it writes."""
    limits(client_burst=2, KEFU_TRUSTED_PROXIES="10.0.0.0/8")
    client = await kefu_app()
    statuses = [(await send(client, f"s{n}", address=f"203.0.113.{n}")).status for n in range(1, 5)]
    assert statuses == [200, 200, 429, 429]


async def test_behind_a_trusted_proxy_what_the_client_wrote_in_forwarded_for_is_ignored(kefu_app, limits):
    """The proxy appends the address it saw; anything to its left came from the client and is not believed."""
    limits(client_burst=2)
    client = await kefu_app()
    statuses = [(await send(client, f"f{n}", address=f"10.9.9.{n}, 198.51.100.20")).status for n in range(1, 5)]
    assert statuses == [200, 200, 429, 429]


async def test_exempt_addresses_skip_the_limits(kefu_app, limits):
    limits(client_burst=1, conversation_burst=1, KEFU_RATE_LIMIT_EXEMPT="192.0.2.0/24, 127.0.0.1")
    client = await kefu_app()
    for n in range(4):
        assert (await send(client, "load-test", f"m{n}", address="192.0.2.44")).status == 200
        assert (await send(client, "internal", f"m{n}")).status == 200  # no proxy header: the peer, 127.0.0.1
    assert await user_texts(client, "load-test") == ["m0", "m1", "m2", "m3"]
    assert (await send(client, "outsider", address="198.51.100.50")).status == 200
    assert (await send(client, "outsider-2", address="198.51.100.50")).status == 429


@pytest.mark.redis
async def test_two_workers_on_redis_share_one_budget(redis_url, starter_model, aiohttp_client, tmp_path, limits):
    from bot.endpoints import Endpoints, StoreEndpoint
    from bot.server import ServerSettings, create_app

    limits(client_burst=4)
    prefix = f"test-{uuid4().hex[:10]}"

    async def worker(name: str):
        settings = ServerSettings.for_project(ROOT, model_path=starter_model, db_path=tmp_path / f"{name}.db")
        settings.redis_url = redis_url
        settings.endpoints = Endpoints(tracker_store=StoreEndpoint(type="redis", key_prefix=prefix))
        return await aiohttp_client(create_app(settings))

    a, b = await worker("a"), await worker("b")
    statuses = [(await send(w, f"w{n}", address="198.51.100.77")).status for n, w in enumerate([a, b] * 3)]
    assert statuses == [200, 200, 200, 200, 429, 429]
    assert (await send(b, "w-other", address="198.51.100.78")).status == 200


@pytest.mark.redis
async def test_with_redis_down_a_message_gets_503_not_500(own_redis, starter_model, aiohttp_client, tmp_path):
    """The limit cannot be checked, so it refuses nobody; the message itself cannot be stored: 503, send again."""
    from bot.endpoints import Endpoints, StoreEndpoint
    from bot.server import ServerSettings, create_app

    server = own_redis()
    settings = ServerSettings.for_project(ROOT, model_path=starter_model, db_path=tmp_path / "kefu.db")
    settings.redis_url = server.url
    settings.endpoints = Endpoints(tracker_store=StoreEndpoint(type="redis", key_prefix="down-test:"))
    client = await aiohttp_client(create_app(settings))
    assert (await send(client, "before", address="198.51.100.90")).status == 200
    server.stop()
    resp = await send(client, "during", address="198.51.100.90")
    assert resp.status == 503, await resp.text()
    server.start()
    assert (await send(client, "after", address="198.51.100.90")).status == 200


def test_invalid_address_lists_are_refused_at_start_naming_the_variable(monkeypatch):
    from bot.channels.settings import ConfigError
    from bot.server import ServerSettings

    monkeypatch.setenv("KEFU_RATE_LIMIT_EXEMPT", "10.0.0.0/8, shop.example")
    with pytest.raises(ConfigError, match=r"KEFU_RATE_LIMIT_EXEMPT: 'shop.example' is not an address"):
        ServerSettings.for_project(ROOT)
    monkeypatch.setenv("KEFU_RATE_LIMIT_EXEMPT", "")
    monkeypatch.setenv("KEFU_TRUSTED_PROXIES", "10.0.0.1/8")
    with pytest.raises(ConfigError, match=r"KEFU_TRUSTED_PROXIES: '10.0.0.1/8'"):
        ServerSettings.for_project(ROOT)
