"""A shopper asks for their data to be deleted: an admin's `DELETE /api/agent/conversations/{id}` (or
`kefu forget ID`) removes the conversation everywhere kefu keeps it -- events, handoff record and queue place,
agents' loads, tickets, uploads and their files, widget sessions, e-mail thread mappings, WeChat documents,
unanswered inbox entries, outgoing claims -- on SQLite and on a real Redis, leaves an audit entry without content,
and touches no other conversation. Afterwards nothing in the store mentions the conversation."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import redis.asyncio as aioredis

from bot.agent import Agent
from bot.app_keys import STORES
from bot.channels.email.threads import ThreadBook
from bot.channels.push.inbox import Inbox
from bot.channels.wechat.outbound import remember_options
from bot.erasure import AUDIT_PREFIX, audit_log
from bot.stores import create_stores
from handoff.app_keys import HANDOFF
from handoff.settings import HandoffSettings
from handoff.tickets import Tickets
from tests.test_handoff_api import BoundedClient, _told, agent, ask_for_person, until
from tests.test_widget_ws import PNG, connect, new_session, say, upload_form, widget_app

ROOT = Path(__file__).resolve().parent.parent
SECRET = "SECRET-7731"  # in everything the shopper wrote, to find any copy left behind


@pytest.fixture
def aiohttp_client_cls() -> type[BoundedClient]:
    return BoundedClient


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    return {"name": request.param, "url": url, "prefix": f"test-{uuid4().hex[:10]}:" if url else None}


async def everything_mentioning(client, backend: dict[str, Any], tmp_path: Path, needle: str) -> list[str]:
    """Every key, row or value in the store that contains `needle` (the audit log aside), and every upload file."""
    found = [f"file {f.name}" for f in (tmp_path / "uploads").glob("*") if needle.encode() in f.read_bytes()]
    if backend["name"] == "sqlite":
        with sqlite3.connect(tmp_path / "kefu.db") as conn:
            tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                for row in conn.execute(f"SELECT * FROM {table}"):
                    text = repr(row)
                    if needle in text and not (table == "kv" and row[0].startswith(AUDIT_PREFIX)):
                        found.append(f"{table}: {text[:120]}")
        return found
    redis = aioredis.from_url(backend["url"], decode_responses=True)
    try:
        async for key in redis.scan_iter(match=f"{backend['prefix']}*"):
            kind = await redis.type(key)
            value = {"string": redis.get, "hash": redis.hgetall, "list": lambda k: redis.lrange(k, 0, -1),
                     "zset": lambda k: redis.zrange(k, 0, -1)}[kind](key)
            text = f"{key} {await value}"
            if needle in text and AUDIT_PREFIX not in key:
                found.append(text[:120])
    finally:
        await redis.aclose()
    return found


async def test_an_admin_erases_a_conversation_everywhere_and_nothing_else(
        aiohttp_client, starter_model, tmp_path, backend, monkeypatch):
    forgotten_in_memory: list[str] = []
    monkeypatch.setattr(Agent, "forget_conversation", lambda self, cid: forgotten_in_memory.append(cid))
    app = widget_app(starter_model, tmp_path, redis_url=backend["url"], prefix=backend["prefix"],
                     handoff=HandoffSettings(hours={"daily": "24h"}, tick_s=0.1, auto_assign=False))
    client = await aiohttp_client(app)
    stores, service = client.app[STORES], client.app[HANDOFF]
    boss = await agent(client, "boss", role="admin")
    li = await agent(client, "li", name="小李")

    # the shopper to be forgotten: the chat bubble, a file, a handoff an agent took, a ticket
    session = await new_session(client)
    cid, token = session["conversation_id"], session["token"]
    ws, _ = await connect(client, token)
    await say(ws, f"我的包裹坏了，单号 {SECRET}，能退款吗", "forget-m1")
    await say(ws, "转人工", "forget-m2")
    await ws.close()
    resp = await client.post("/api/widget/upload", data=upload_form(PNG, f"receipt-{SECRET}.png", "image/png"),
                             headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 201, await resp.text()
    assert (await client.post(f"/api/agent/conversations/{cid}/claim", headers=li)).status == 200
    # two shoppers wait in line; the first one will be erased too, and the second told its new place
    await ask_for_person(client, "rest-gone", f"我的订单还没到 {SECRET}")
    await ask_for_person(client, "rest-other", "我的订单还没到")
    assert await _told(client, "rest-other", 2)
    await service.tickets.create(cid, f"please call me back about {SECRET}", "zh", "widget", "offline")
    # what the other channels keep, written by their own code (for ids of their own kind)
    wechat = "wechat:oOPENID42"
    await stores.trackers.append(wechat, [{"event": "user", "text": f"微信 {SECRET}", "input_channel": "wechat"}])
    await remember_options(stores.kv, "oOPENID42", ["/ask_refund"], 0.0)
    inbox = Inbox("wechat:inbox:", lambda: 0.0)
    inbox.stores = stores
    await inbox.keep(wechat, "msg-1", {"text": SECRET})
    assert await stores.trackers.claim_message_id(f"out:{wechat}:1")
    mail = "email:0123456789ab"
    await stores.trackers.append(mail, [{"event": "user", "text": f"mail {SECRET}", "input_channel": "email"}])
    await ThreadBook(stores, "service@shop.example").remember(mail, f"<{SECRET}@mail.example>")

    assert await everything_mentioning(client, backend, tmp_path, SECRET)  # the check sees data when it is there

    # only an admin may erase; an unknown id is 404
    resp = await client.delete(f"/api/agent/conversations/{cid}", headers=li)
    assert resp.status == 403 and "admin" in (await resp.json())["error"]
    assert await stores.trackers.exists(cid)
    client.session.cookie_jar.clear()  # the logins' cookies: without a session or token it is 401
    assert (await client.delete(f"/api/agent/conversations/{cid}")).status == 401
    assert (await client.delete("/api/agent/conversations/web:nobody", headers=boss)).status == 404

    resp = await client.delete(f"/api/agent/conversations/{cid}", headers=boss)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["conversation_id"] == cid and body["erased"] is True
    assert body["removed"]["events"] >= 4
    assert {k: body["removed"][k] for k in ("handoff_records", "agent_loads", "tickets", "uploads",
                                            "widget_sessions")} == dict.fromkeys(
        ("handoff_records", "agent_loads", "tickets", "uploads", "widget_sessions"), 1)
    for other in ("rest-gone", wechat, mail):
        resp = await client.delete(f"/api/agent/conversations/{other}", headers=boss)
        assert resp.status == 200, await resp.text()
    await until(lambda: _told(client, "rest-other", 1))  # moved up, and told so

    assert await everything_mentioning(client, backend, tmp_path, SECRET) == []
    for erased in (cid, "rest-gone", wechat, mail):
        assert await everything_mentioning(client, backend, tmp_path, erased) == []
    assert forgotten_in_memory == [cid, "rest-gone", wechat, mail]
    assert (await client.get(f"/api/agent/conversations/{cid}", headers=boss)).status == 404
    assert (await client.delete(f"/api/agent/conversations/{cid}", headers=boss)).status == 404
    assert (await new_session(client, token))["conversation_id"] != cid  # the old token opens nothing
    assert await stores.trackers.claim_message_id(f"out:{wechat}:1")  # a new chat under that id will be answered

    entries = await audit_log(stores.kv)
    assert [(e["conversation_id"], e["by"]) for e in entries] == [
        (cid, "agent:boss"), ("rest-gone", "agent:boss"), (wechat, "agent:boss"), (mail, "agent:boss")]
    assert all(e["at"] > 0 for e in entries) and SECRET not in repr(entries)  # who, when, which id: no content

    # the shopper still waiting is untouched
    assert [q["conversation_id"] for q in await (await client.get("/api/agent/queue", headers=li)).json()] == [
        "rest-other"]
    assert (await client.get("/api/agent/conversations/rest-other", headers=boss)).status == 200
    if backend["name"] == "sqlite":  # and not in the files' free space or write-ahead log either
        files = b"".join(f.read_bytes() for f in tmp_path.iterdir() if f.name.startswith("kefu.db"))
        assert SECRET.encode() not in files


# -- kefu forget -------------------------------------------------------------------------------------------------


def kefu(project: Path, *args: str) -> subprocess.CompletedProcess:
    """This checkout's `kefu` (the installed script may be another checkout's) in `project`, on its SQLite store."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"} | {"PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=project, capture_output=True, text=True,
                          timeout=60, env=env, stdin=subprocess.DEVNULL)


def error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    return line


HOLDER = """
import sys, time
from pathlib import Path
from bot.stores.serving_lock import serving
with serving(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(60)
"""


async def test_kefu_forget_erases_after_confirmation_and_never_under_a_running_server(tmp_path: Path) -> None:
    stores = create_stores(None, tmp_path / "kefu.db")
    try:
        for cid in ("rest-x", "rest-y"):
            await stores.trackers.append(cid, [{"event": "user", "text": f"{SECRET} from {cid}"},
                                               {"event": "bot", "text": "ok"}])
        await Tickets(stores.kv, stores.trackers).create("rest-x", f"call me {SECRET}", "en", "rest", "closed")
    finally:
        await stores.close()

    assert "pass --yes" in error_line(kefu(tmp_path, "forget", "rest-x"))  # no terminal to confirm on
    assert "no conversation 'rest-nobody'" in error_line(kefu(tmp_path, "forget", "rest-nobody", "--yes"))
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "kefu.db")], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        line = error_line(kefu(tmp_path, "forget", "rest-x", "--yes"))
        assert f"(pid {holder.pid}) is serving" in line and "DELETE /api/agent/conversations/rest-x" in line
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)

    result = kefu(tmp_path, "forget", "rest-x", "--yes")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Erased conversation rest-x: tickets 1, events 2."

    stores = create_stores(None, tmp_path / "kefu.db")
    try:
        assert not await stores.trackers.exists("rest-x")
        assert [e["text"] for e in await stores.trackers.events("rest-y")] == [f"{SECRET} from rest-y", "ok"]
        assert await stores.kv.scan("ticket:") == []
        [entry] = await audit_log(stores.kv)
        assert entry["conversation_id"] == "rest-x" and entry["by"].startswith("cli:") and entry["at"] > 0
        assert SECRET not in repr(entry)
    finally:
        await stores.close()
