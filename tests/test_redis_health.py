"""An operator running kefu on Redis is told when Redis would lose data, and /health says when Redis is down
(issue 14, finding 6). Each test starts its own real redis-server, to configure it or to stop it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bot.endpoints import StoreEndpoint
from bot.server import ServerSettings, create_app
from bot.stores.redis_persistence import persistence_problem

pytestmark = pytest.mark.redis
ROOT = Path(__file__).resolve().parent.parent


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def warnings(self) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= logging.WARNING]


@pytest.fixture
def captured():
    handler, logger = Captured(), logging.getLogger("bot")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(previous)


async def problem(url: str) -> str | None:
    client = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        return await persistence_problem(client)
    finally:
        await client.aclose()


async def test_persistence_is_judged_from_config_or_info_when_config_is_disabled(own_redis):
    off = await problem(own_redis().url)
    assert off is not None and "persistence is OFF" in off and "appendonly yes" in off
    rdb_only = await problem(own_redis("--appendonly", "no", "--save", "3600 1").url)
    assert rdb_only is not None and "RDB snapshots only" in rdb_only
    assert await problem(own_redis("--appendonly", "yes", "--appendfsync", "everysec", "--save", "").url) is None
    # managed Redis often disables CONFIG: INFO persistence still tells whether AOF is on
    hidden_off = await problem(own_redis("--appendonly", "no", "--save", "", "--rename-command", "CONFIG", "").url)
    assert hidden_off is not None and "CONFIG is disabled" in hidden_off
    assert await problem(own_redis("--appendonly", "yes", "--rename-command", "CONFIG", "").url) is None


def redis_app(model: Path, tmp_path: Path, url: str):
    settings = ServerSettings.for_project(ROOT, model_path=model, db_path=tmp_path / "kefu.db")
    settings.redis_url = url
    settings.endpoints.tracker_store = StoreEndpoint(type="redis", key_prefix="health-test:")
    return create_app(settings)


async def test_start_up_warns_loudly_without_persistence_and_health_reports_redis_down(
        aiohttp_client, starter_model, tmp_path, own_redis, captured):
    server = own_redis()  # like a default redis-server with persistence turned off
    client = await aiohttp_client(redis_app(starter_model, tmp_path, server.url))
    [warning] = [w for w in captured.warnings() if "persistence" in w]
    assert "Redis persistence is OFF" in warning and "appendfsync everysec" in warning

    resp = await client.get("/health")
    assert resp.status == 200 and (await resp.json())["status"] == "ok"
    server.stop()
    resp = await client.get("/health")
    body = await resp.json()
    assert resp.status == 503, body
    assert body["status"] == "down" and set(body["down"]) == {"redis"} and body["store"] == "redis"
    server.start()  # back on the same port: healthy again without restarting kefu
    resp = await client.get("/health")
    assert resp.status == 200, await resp.text()


async def test_no_warning_when_redis_keeps_an_append_only_file(aiohttp_client, starter_model, tmp_path, own_redis,
                                                               captured):
    server = own_redis("--appendonly", "yes", "--appendfsync", "everysec")
    client = await aiohttp_client(redis_app(starter_model, tmp_path, server.url))
    assert not [w for w in captured.warnings() if "persistence" in w]
    assert any("AOF on" in r.getMessage() for r in captured.records)
    assert (await client.get("/health")).status == 200


async def test_while_redis_is_down_every_route_answers_503_with_retry_after_and_works_again_after(
        aiohttp_client, starter_model, tmp_path, own_redis):
    from handoff.app_keys import HANDOFF

    server = own_redis("--appendonly", "yes", "--appendfsync", "always")  # the session survives the restart
    client = await aiohttp_client(redis_app(starter_model, tmp_path, server.url))
    await client.app[HANDOFF].agents.add("li", "agent-password-1", name="Li")
    login = await client.post("/api/agent/login", json={"username": "li", "password": "agent-password-1"})
    agent = {"Authorization": f"Bearer {(await login.json())['token']}"}
    server.stop()
    rest = {"json": {"sender": "s1", "message": "运费多少？"}, "headers": {"X-Message-Id": "m1"}}
    calls = (("GET", "/api/agent/conversations", {"headers": agent}), ("POST", "/webhooks/rest/webhook", rest),
             ("POST", "/api/widget/session", {"json": {}}))
    for method, path, kwargs in calls:
        resp = await client.request(method, path, **kwargs)
        assert resp.status == 503, (path, resp.status, await resp.text())
        assert resp.headers["Retry-After"] == "2" and "error" in await resp.json(), path
    server.start()  # the client's retry, once Redis is back, gets its answer
    assert (await client.get("/api/agent/conversations", headers=agent)).status == 200
    resp = await client.post("/webhooks/rest/webhook", **rest)
    assert resp.status == 200 and (await resp.json())[0]["text"]
