"""Fixtures for the channel tests: fake upstream servers, the real app (starter model, real stores) configured
through the environment as in production, and helpers that sign / encrypt requests like WeChat and Meta do."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

from bot.channels.messenger import signature as fb_signature
from bot.channels.wechat.crypto import MessageCipher, signature
from bot.server import ServerSettings, create_app
from handoff.app_keys import HANDOFF, HANDOFF_SETTINGS
from handoff.settings import HandoffSettings
from tests.channels.fakes import FakeGraph, FakeWeChat

ROOT = Path(__file__).resolve().parents[2]

# Appendix A of docs/channels.md
WX_TOKEN = "wx_test_token"
WX_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
WX_APPID = "wx1234567890abcdef"
WX_ACCOUNT = "gh_0123456789ab"
OPENID = "oTESTUSER0000000000000000001"
FB_SECRET = "test_app_secret"
FB_VERIFY = "verify-me"
FB_PAGE_TOKEN = "page-token-secret"
AGENT_PASSWORD = "agent-password-1"


def wechat_env(api_base: str, **extra: str) -> dict[str, str]:
    return {"WECHAT_TOKEN": WX_TOKEN, "WECHAT_APPID": WX_APPID, "WECHAT_APPSECRET": "wx-app-secret-value",
            "WECHAT_ENCODING_AES_KEY": WX_AES_KEY, "WECHAT_API_BASE": api_base, "WECHAT_RETRY_BASE_S": "0.01",
            "WECHAT_HTTP_TIMEOUT_S": "2", **extra}


def messenger_env(api_base: str, **extra: str) -> dict[str, str]:
    return {"MESSENGER_VERIFY_TOKEN": FB_VERIFY, "MESSENGER_APP_SECRET": FB_SECRET,
            "MESSENGER_PAGE_ACCESS_TOKEN": FB_PAGE_TOKEN, "MESSENGER_GRAPH_API_BASE": api_base,
            "MESSENGER_GRAPH_API_VERSION": "v25.0", "MESSENGER_RETRY_BASE_S": "0.01", **extra}


def text_xml(content: str, msg_id: str, openid: str = OPENID, create_time: int | None = None) -> str:
    return (f"<xml><ToUserName><![CDATA[{WX_ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{openid}]]>"
            f"</FromUserName><CreateTime>{create_time or int(time.time())}</CreateTime><MsgType><![CDATA[text]]>"
            f"</MsgType><Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>")


def wechat_push(plain_xml: str, timestamp: int | None = None, nonce: str = "1357924680",
                encrypt: bool = True) -> tuple[str, bytes]:
    """(query string, body) of a push as WeChat sends it in safe mode (or plaintext mode)."""
    ts = str(timestamp or int(time.time()))
    query = {"signature": signature(WX_TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce,
             "openid": OPENID}
    if not encrypt:
        return urlencode(query), plain_xml.encode()
    encrypted = MessageCipher(WX_AES_KEY, WX_APPID).encrypt(plain_xml)
    query.update(encrypt_type="aes", msg_signature=signature(WX_TOKEN, ts, nonce, encrypted))
    body = f"<xml><ToUserName><![CDATA[{WX_ACCOUNT}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    return urlencode(query), body.encode()


def messenger_body(*entries: list[dict]) -> bytes:
    data = {"object": "page", "entry": [{"id": "111", "time": int(time.time() * 1000), "messaging": list(items)}
                                        for items in entries]}
    return json.dumps(data).encode()


def fb_text(psid: str, mid: str, text: str) -> dict:
    return {"sender": {"id": psid}, "recipient": {"id": "111"}, "timestamp": int(time.time() * 1000),
            "message": {"mid": mid, "text": text}}


def fb_headers(body: bytes, secret: str = FB_SECRET) -> dict[str, str]:
    return {"X-Hub-Signature-256": fb_signature.sign(secret, body), "Content-Type": "application/json"}


async def serving(fake, aiohttp_server):
    """A fake platform started on 127.0.0.1, with its `url`."""
    fake.server = await aiohttp_server(fake.app())
    fake.url = str(fake.server.make_url("")).rstrip("/")
    return fake


@pytest.fixture
async def fake_wechat(aiohttp_server) -> FakeWeChat:
    return await serving(FakeWeChat(), aiohttp_server)


@pytest.fixture
async def fake_graph(aiohttp_server) -> FakeGraph:
    return await serving(FakeGraph(), aiohttp_server)


@pytest.fixture
def make_client(aiohttp_client, starter_model, tmp_path, monkeypatch):
    """make_client(env, redis_url=None, prefix=None, name="a", handoff=None) → a test client of the real app
    (`handoff`: HandoffSettings instead of the project's handoff.yml)."""
    for name in list(__import__("os").environ):
        if name.startswith(("WECHAT_", "MESSENGER_")):
            monkeypatch.delenv(name)

    async def make(env: dict[str, str], redis_url: str | None = None, prefix: str | None = None,
                   name: str = "a", handoff: HandoffSettings | None = None):
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        settings = ServerSettings.for_project(ROOT, model_path=starter_model, db_path=tmp_path / f"{name}.db")
        settings.redis_url = redis_url
        if prefix:
            from bot.endpoints import StoreEndpoint

            settings.endpoints.tracker_store = StoreEndpoint(type="redis", key_prefix=prefix)
        app = create_app(settings)
        if handoff is not None:
            app[HANDOFF_SETTINGS] = handoff
        return await aiohttp_client(app)

    return make


def open_all_day() -> HandoffSettings:
    """Agents on duty around the clock, and no auto-assignment: the shopper waits until an agent claims."""
    return HandoffSettings(hours={"daily": "24h"}, auto_assign=False, tick_s=0.1)


async def agent_login(client, username: str = "li", name: str = "小李", status: str = "online") -> dict[str, str]:
    """An agent account (made as `kefu agents add` does), logged in over HTTP and set to `status`: its header."""
    await client.app[HANDOFF].agents.add(username, AGENT_PASSWORD, name=name)
    login = await client.post("/api/agent/login", json={"username": username, "password": AGENT_PASSWORD})
    assert login.status == 200, await login.text()
    headers = {"Authorization": f"Bearer {(await login.json())['token']}"}
    resp = await client.put("/api/agent/status", json={"status": status}, headers=headers)
    assert resp.status == 200, await resp.text()
    return headers


class LogCapture(logging.Handler):
    """What the channel code logged (the suite runs with `-p no:logging`, so no caplog)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def text(self) -> str:
        lines = []
        for record in self.records:
            lines.append(record.getMessage())
            if record.exc_info and record.exc_info[1] is not None:
                lines.append(repr(record.exc_info[1]))
        return "\n".join(lines)


@pytest.fixture
def logs():
    capture = LogCapture()
    logger = logging.getLogger("bot")
    previous = logger.level
    logger.addHandler(capture)
    logger.setLevel(logging.DEBUG)
    yield capture
    logger.removeHandler(capture)
    logger.setLevel(previous)
