"""The chat bubble's endpoint over real HTTP and WebSocket, checklist S1–S11 of docs/channels.md §5.3.

Agent-side events (queued, agent_assigned, agent_message, handoff_ended) are appended with the tracker store,
exactly as the console does, so these tests do not depend on business hours or on who is on duty.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import itertools
import json
from pathlib import Path
from typing import Any
from uuid import uuid4

import aiohttp
import pytest
from redis import asyncio as aioredis

from bot.app_keys import STORES
from bot.channels.widget import WIDGET, protocol
from bot.dialogue import events as ev
from bot.endpoints import StoreEndpoint
from bot.server import ServerSettings, create_app
from handoff.app_keys import HANDOFF_SETTINGS
from handoff.settings import HandoffSettings
from handoff.shopper import rating_request
from tests.channels.conftest import agent_login, open_all_day

ROOT = Path(__file__).resolve().parent.parent
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89" \
      b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"


def widget_app(model: Path, tmp_path: Path, redis_url: str | None = None, prefix: str | None = None,
               handoff: HandoffSettings | None = None, **widget: Any):
    settings = ServerSettings.for_project(ROOT, model_path=model, db_path=tmp_path / "kefu.db")
    settings.redis_url = redis_url
    if prefix:
        settings.endpoints.tracker_store = StoreEndpoint(type="redis", key_prefix=prefix)
    settings.endpoints.channels = {"widget": {"upload_dir": tmp_path / "uploads", **widget}}
    app = create_app(settings)
    if handoff is not None:
        app[HANDOFF_SETTINGS] = handoff
    return app


@pytest.fixture
async def client(aiohttp_client, starter_model, tmp_path):
    return await aiohttp_client(widget_app(starter_model, tmp_path, allowed_origins=["https://shop.example"]))


def origin(client) -> str:
    return f"http://{client.host}:{client.port}"


async def new_session(client, token: str | None = None, origin_header: str | None = None) -> dict:
    resp = await client.post("/api/widget/session", json={"token": token} if token else {},
                             headers={"Origin": origin_header or origin(client)})
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def frames_until(ws, done, timeout: float = 10.0) -> list[dict]:
    """Frames received until `done(frame)` is true (inclusive)."""
    got: list[dict] = []
    async with asyncio.timeout(timeout):
        while True:
            message = await ws.receive()
            assert message.type == aiohttp.WSMsgType.TEXT, message
            frame = json.loads(message.data)
            got.append(frame)
            if done(frame):
                return got


async def connect(client, token: str, last_seq: int = 0, origin_header: str | None = None):
    """An open socket after hello: (ws, frames of the welcome + replay + ready)."""
    ws = await client.ws_connect("/api/widget/ws", origin=origin_header or origin(client))
    await ws.send_json({"type": "hello", "token": token, "last_seq": last_seq})
    return ws, await frames_until(ws, lambda f: f["type"] == "ready")


async def say(ws, text: str, client_msg_id: str) -> list[dict]:
    await ws.send_json({"type": "message", "client_msg_id": client_msg_id, "text": text})
    return await frames_until(ws, lambda f: f["type"] == "ack" and f["client_msg_id"] == client_msg_id)


def messages(frames: list[dict], role: str | None = None) -> list[dict]:
    return [f for f in frames if f["type"] == "message" and (role is None or f["role"] == role)]


async def stored_events(client, conversation_id: str) -> list[dict]:
    return await client.app[STORES].trackers.events(conversation_id)


def agent_message(text: str) -> dict[str, Any]:
    return {"event": ev.AGENT_MESSAGE, "text": text, "agent": "li01", "agent_name": "Li"}


def assert_in_order(frames: list[dict]) -> list[dict]:
    """The frames of stored events, each chained to the one before it (what the panel checks); returns them."""
    stored = [f for f in frames if "seq" in f and f["type"] != "ack"]
    assert all(f["prev_seq"] == before["seq"] for before, f in itertools.pairwise(stored)), stored
    return stored


# -- S1, S2: sessions ------------------------------------------------------------------------------------------

async def test_s1_new_visitor_gets_a_random_token_stored_hashed_and_a_web_conversation(client):
    session = await new_session(client)
    assert session["new"] is True and session["last_seq"] == 0
    assert session["conversation_id"].startswith("web:") and len(session["token"]) == 43
    kv = client.app[STORES].kv
    digest = hashlib.sha256(session["token"].encode()).hexdigest()
    assert (await kv.get(f"widget:session:{digest}"))["conversation_id"] == session["conversation_id"]
    assert not any(session["token"] in k + json.dumps(v) for k, v in await kv.scan(""))
    meta = await client.app[STORES].trackers.get_meta(session["conversation_id"])
    assert meta["channel"] == "widget"
    assert session["limits"]["max_upload_bytes"] == 10 * 1024 * 1024


async def test_s2_known_token_resumes_unknown_or_garbled_gets_a_new_conversation(client):
    first = await new_session(client)
    again = await new_session(client, first["token"])
    assert (again["conversation_id"], again["token"], again["new"]) == (first["conversation_id"], first["token"], False)
    for bad in ("A" * 43, first["token"][:-2], first["token"] + "x", "web:" + first["conversation_id"]):
        other = await new_session(client, bad)
        assert other["new"] and other["conversation_id"] != first["conversation_id"]
    resp = await client.post("/api/widget/session", data=b"{not json", headers={"Origin": origin(client)})
    assert resp.status == 400
    # the socket refuses an unknown token (the panel then asks for a session): never someone's conversation
    ws = await client.ws_connect("/api/widget/ws", origin=origin(client))
    await ws.send_json({"type": "hello", "token": "B" * 43, "last_seq": 0})
    frame = await ws.receive_json(timeout=5)
    assert frame == {"type": "error", "code": "unauthorized", "message": "unknown or expired session"}
    closed = await ws.receive(timeout=5)
    assert closed.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 4401


async def test_history_needs_the_token(client):
    assert (await client.get("/api/widget/history")).status == 401
    assert (await client.get("/api/widget/history", headers={"Authorization": "Bearer " + "C" * 43})).status == 401


# -- S3: origins -----------------------------------------------------------------------------------------------

async def test_s3_socket_from_a_site_not_allowed_is_refused_before_the_upgrade(client):
    session = await new_session(client)
    for bad in ("http://evil.example", "https://shop.example.evil.example", "null"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await client.ws_connect("/api/widget/ws", origin=bad)
        assert info.value.status == 403
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect("/api/widget/ws")  # no Origin at all: not a page we know
    assert info.value.status == 403
    for good in ("https://shop.example", origin(client)):  # the allowlist, and kefu's own pages
        ws, frames = await connect(client, session["token"], origin_header=good)
        assert frames[0]["type"] == "welcome"
        await ws.close()


async def test_http_api_answers_allowed_sites_with_cors_and_refuses_others(client):
    resp = await client.post("/api/widget/session", json={}, headers={"Origin": "http://evil.example"})
    assert resp.status == 403 and "Access-Control-Allow-Origin" not in resp.headers
    resp = await client.post("/api/widget/session", json={}, headers={"Origin": "https://shop.example"})
    assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    preflight = await client.options("/api/widget/upload", headers={
        "Origin": "https://shop.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization"})
    assert preflight.status == 204 and "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    refused = await client.options("/api/widget/upload", headers={"Origin": "http://evil.example"})
    assert refused.status == 403
    error = await client.get("/api/widget/history", headers={"Origin": "https://shop.example"})
    assert error.status == 401 and error.headers["Access-Control-Allow-Origin"] == "https://shop.example"


# -- S4: bad frames --------------------------------------------------------------------------------------------

async def test_s4_garbled_unknown_and_oversize_frames_get_error_frames_and_nothing_is_processed(client):
    session = await new_session(client)
    ws, _ = await connect(client, session["token"])
    bad = ["{nope", json.dumps({"type": "launch_missiles"}),
           json.dumps({"type": "message", "client_msg_id": "uuid-big-1", "text": "x" * 20000})]
    codes = []
    for raw in bad:
        await ws.send_str(raw)
        codes.append((await ws.receive_json(timeout=5))["code"])
    assert codes == ["bad_frame", "unknown_type", "too_large"]
    await ws.send_bytes(b"\x00\x01")
    assert (await ws.receive_json(timeout=5))["code"] == "bad_frame"
    assert await stored_events(client, session["conversation_id"]) == []
    # the socket still works for good frames
    await ws.send_json({"type": "ping"})
    assert (await ws.receive_json(timeout=5)) == {"type": "pong"}
    # and repeated abuse closes it (max_bad_frames = 5)
    await ws.send_str("garbage")
    assert (await ws.receive_json(timeout=5))["code"] == "bad_frame"
    closed = await ws.receive(timeout=5)
    assert closed.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 1008
    assert await stored_events(client, session["conversation_id"]) == []


async def test_first_frame_must_be_hello(client):
    ws = await client.ws_connect("/api/widget/ws", origin=origin(client))
    await ws.send_json({"type": "message", "client_msg_id": "uuid-0001", "text": "hi"})
    assert (await ws.receive_json(timeout=5))["code"] == "unauthorized"
    assert (await ws.receive(timeout=5)).type == aiohttp.WSMsgType.CLOSE and ws.close_code == 4401


# -- S5, S6, S7: replay, idempotency, offline delivery ---------------------------------------------------------

async def test_bot_answers_over_the_socket_with_typing_and_an_ack(client):
    session = await new_session(client)
    ws, frames = await connect(client, session["token"])
    assert [f["type"] for f in frames] == ["welcome", "ready"]
    got = await say(ws, "how much is shipping?", "uuid-ship-1")
    got += await frames_until(ws, lambda f: f["type"] == "typing" and f["state"] == "off")
    kinds = [(f["type"], f.get("role"), f.get("state")) for f in got]
    assert kinds[0] == ("typing", "bot", "on")
    user, bot = messages(got, "user")[0], messages(got, "bot")[0]
    assert user["client_msg_id"] == "uuid-ship-1" and user["text"] == "how much is shipping?"
    assert "99" in bot["text"] and bot["seq"] > user["seq"]
    ack = next(f for f in got if f["type"] == "ack")
    assert ack["seq"] == user["seq"]
    assert len([f for f in got if f["type"] == "message"]) == 2, "each event reaches the panel once"
    meta = await client.app[STORES].trackers.get_meta(session["conversation_id"])
    assert meta["channel"] == "widget"


async def test_s5_hello_with_last_seq_replays_only_what_was_missed_then_goes_live(client):
    session = await new_session(client)
    ws, _ = await connect(client, session["token"])
    first = await say(ws, "hi", "uuid-hi-0001")
    await ws.close()
    seen = max(f["seq"] for f in messages(first))
    await client.app[STORES].trackers.append(session["conversation_id"], [ev.bot("a message while you were away")])
    ws, frames = await connect(client, session["token"], last_seq=seen)
    welcome, replay, ready = frames[0], frames[1:-1], frames[-1]
    assert welcome["type"] == "welcome" and welcome["conversation_id"] == session["conversation_id"]
    assert [f["text"] for f in messages(replay)] == ["a message while you were away"]
    assert all(f["seq"] > seen for f in replay)
    assert ready["last_seq"] == welcome["last_seq"] >= replay[-1]["seq"]
    # from scratch: everything, in seq order
    ws2, everything = await connect(client, session["token"], last_seq=0)
    seqs = [f["seq"] for f in messages(everything)]
    assert seqs == sorted(seqs) and len(seqs) == 3
    # then live
    await client.app[STORES].trackers.append(session["conversation_id"], [ev.bot("live one")])
    live = await frames_until(ws, lambda f: f["type"] == "message")
    assert live[-1]["text"] == "live one"
    await ws.close()
    await ws2.close()


async def test_s6_a_resent_message_is_processed_once_and_acked_with_its_original_seq(client):
    session = await new_session(client)
    cid = session["conversation_id"]
    ws, _ = await connect(client, session["token"])
    first = await say(ws, "do you ship internationally?", "uuid-dup-0001")
    ack = next(f for f in first if f["type"] == "ack")
    # the same id again on this socket, and after a reconnect (the panel resends what it never saw acked)
    again = await say(ws, "do you ship internationally?", "uuid-dup-0001")
    assert next(f for f in again if f["type"] == "ack")["seq"] == ack["seq"]
    await ws.close()
    ws, _ = await connect(client, session["token"], last_seq=ack["seq"] + 10)
    resent = await say(ws, "do you ship internationally?", "uuid-dup-0001")
    assert next(f for f in resent if f["type"] == "ack")["seq"] == ack["seq"]
    # two copies racing each other: still one
    await ws.send_json({"type": "message", "client_msg_id": "uuid-race-001", "text": "how can I pay?"})
    await ws.send_json({"type": "message", "client_msg_id": "uuid-race-001", "text": "how can I pay?"})
    acks = []
    async with asyncio.timeout(10):
        while len(acks) < 2:
            frame = await ws.receive_json()
            if frame["type"] == "ack":
                acks.append(frame["seq"])
    assert acks[0] == acks[1]
    events = await stored_events(client, cid)
    for cmid in ("uuid-dup-0001", "uuid-race-001"):
        assert sum(1 for e in events if e["event"] == "user" and e.get("message_id") == cmid) == 1
    assert sum(1 for e in events if e["event"] == "bot") == 2, "the bot answered each question once"
    await ws.close()


async def test_s7_agent_message_while_offline_arrives_on_resume_and_in_history(client):
    session = await new_session(client)
    cid = session["conversation_id"]
    ws, _ = await connect(client, session["token"])
    await say(ws, "hello", "uuid-hello-01")
    last = (await stored_events(client, cid))[-1]["seq"]
    await ws.close()
    await client.app[STORES].trackers.append(cid, [
        {"event": ev.AGENT_MESSAGE, "text": "Your parcel left Hangzhou today.", "agent": "li01", "agent_name": "Li"},
        {"event": ev.AGENT_NOTE, "text": "private: VIP customer", "agent": "li01"},
    ])
    ws, frames = await connect(client, session["token"], last_seq=last)
    agent = messages(frames, "agent")
    assert [(m["text"], m["agent"]["name"]) for m in agent] == [("Your parcel left Hangzhou today.", "Li")]
    assert "private" not in json.dumps(frames)
    history = await (await client.get("/api/widget/history",
                                      headers={"Authorization": f"Bearer {session['token']}"})).json()
    assert history["conversation_id"] == cid and history["last_seq"] == last + 2
    assert [f["role"] for f in messages(history["frames"])][-1] == "agent"
    assert "private" not in json.dumps(history)
    newer = await (await client.get(f"/api/widget/history?after_seq={last}",
                                     headers={"Authorization": f"Bearer {session['token']}"})).json()
    assert [f["text"] for f in newer["frames"]] == ["Your parcel left Hangzhou today."]
    await ws.close()


# -- S8: rate limit --------------------------------------------------------------------------------------------

async def test_s8_too_many_messages_get_rate_limited_and_are_not_processed(aiohttp_client, starter_model, tmp_path):
    client = await aiohttp_client(widget_app(starter_model, tmp_path, messages_per_minute=1, message_burst=2))
    session = await new_session(client)
    ws, _ = await connect(client, session["token"])
    await say(ws, "hi", "uuid-rate-001")
    await say(ws, "thanks", "uuid-rate-002")
    await ws.send_json({"type": "message", "client_msg_id": "uuid-rate-003", "text": "one more"})
    frames = await frames_until(ws, lambda f: f["type"] == "error")
    error = frames[-1]
    assert error["code"] == "rate_limited" and error["client_msg_id"] == "uuid-rate-003"
    assert error["retry_after_s"] > 0
    # a resend of something already processed is re-acked, not refused
    await ws.send_json({"type": "message", "client_msg_id": "uuid-rate-001", "text": "hi"})
    assert (await frames_until(ws, lambda f: f["type"] in ("ack", "error")))[-1]["type"] == "ack"
    await asyncio.sleep(0.2)
    texts = [e["text"] for e in await stored_events(client, session["conversation_id"]) if e["event"] == "user"]
    assert texts == ["hi", "thanks"]
    await ws.close()


# -- S9: handoff -----------------------------------------------------------------------------------------------

async def test_s9_talk_to_a_person_and_every_handoff_state_reach_the_panel(client):
    session = await new_session(client)
    cid = session["conversation_id"]
    ws, _ = await connect(client, session["token"])
    await ws.send_json({"type": "handoff_request", "client_msg_id": "uuid-human-01", "title": "Talk to a person"})
    got = await frames_until(ws, lambda f: f["type"] == "ack")
    assert messages(got, "user")[0]["text"] == "Talk to a person"
    stored = await stored_events(client, cid)
    user = next(e for e in stored if e["event"] == "user")
    assert user["text"] == "/human_handoff" and user["metadata"]["title"] == "Talk to a person"
    assert any(f["type"] == "handoff" and f["state"] == "requested" for f in got)
    trackers, bus = client.app[STORES].trackers, client.app[STORES].bus
    await trackers.append(cid, [{"event": ev.QUEUED, "position": 3, "eta_s": 120}])
    await trackers.append(cid, [{"event": ev.QUEUED, "position": 1, "eta_s": 40}])
    await trackers.append(cid, [{"event": ev.AGENT_ASSIGNED, "agent": "li01", "agent_name": "Li"}])
    await bus.publish(cid, {"event": ev.TYPING, "role": "agent", "on": True, "agent": "li01", "agent_name": "Li"})
    await trackers.append(cid, [{"event": ev.AGENT_MESSAGE, "text": "Hi, I'm Li.", "agent": "li01",
                                 "agent_name": "Li"}])
    await trackers.append(cid, [{"event": ev.HANDOFF_ENDED, "resolution": "resolved", "agent": "li01"}])
    await trackers.append(cid, [{"event": ev.HANDOFF_UNAVAILABLE, "reason": "closed",
                                 "next_open": "2026-11-26T09:00:00+08:00"}])
    live = await frames_until(ws, lambda f: f.get("state") == "unavailable")
    handoff = [(f["state"], f.get("queue_position"), (f.get("agent") or {}).get("name"))
               for f in live if f["type"] == "handoff"]
    assert handoff == [("queued", 3, None), ("queued", 1, None), ("assigned", None, "Li"), ("ended", None, None),
                       ("unavailable", None, None)]
    typing = next(f for f in live if f["type"] == "typing" and f["role"] == "agent")
    assert typing == {"type": "typing", "role": "agent", "state": "on", "agent": {"name": "Li"}}
    assert messages(live, "agent")[0]["agent"] == {"name": "Li"}
    state = (await new_session(client, session["token"]))["state"]
    assert state == {"handoff": "unavailable", "agent": None, "csat_pending": False,
                     "details": {"reason": "closed", "next_open": "2026-11-26T09:00:00+08:00"}}
    await ws.close()


async def test_rating_and_cancel_buttons_send_their_payloads(client):
    session = await new_session(client)
    cid = session["conversation_id"]
    trackers = client.app[STORES].trackers
    await trackers.append(cid, [{"event": ev.HANDOFF_ENDED, "resolution": "resolved"}])
    assert (await new_session(client, session["token"]))["state"]["csat_pending"] is False, "nothing asked yet"
    await trackers.append(cid, [rating_request("en")])  # what the handoff service adds after the end
    assert (await new_session(client, session["token"]))["state"]["csat_pending"] is True
    ws, _ = await connect(client, session["token"])
    await ws.send_json({"type": "csat", "client_msg_id": "uuid-stars-01", "score": 4})
    got = await frames_until(ws, lambda f: f["type"] == "ack")
    assert messages(got, "user")[0]["text"] == "★★★★"
    assert [e["score"] for e in await stored_events(client, cid) if e["event"] == ev.CSAT] == [4]
    await ws.send_json({"type": "handoff_cancel", "client_msg_id": "uuid-cancel-1", "title": "Stop waiting"})
    await frames_until(ws, lambda f: f["type"] == "ack")
    texts = [e["text"] for e in await stored_events(client, cid) if e["event"] == "user"]
    assert texts == ['/csat{"score": 4}', "/cancel_handoff"]
    assert (await new_session(client, session["token"]))["state"]["csat_pending"] is False
    await ws.close()


# -- S10: uploads ----------------------------------------------------------------------------------------------

def upload_form(content: bytes, filename: str, content_type: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", io.BytesIO(content), filename=filename, content_type=content_type)
    return form


async def test_s10_uploads_checked_for_size_and_type_and_nothing_kept_when_refused(
        aiohttp_client, starter_model, tmp_path):
    client = await aiohttp_client(widget_app(starter_model, tmp_path, max_upload_bytes=4096))
    session = await new_session(client)
    auth = {"Authorization": f"Bearer {session['token']}", "Origin": origin(client)}
    refused = [
        (upload_form(PNG + b"\0" * 5000, "big.png", "image/png"), 413),
        (upload_form(b"<html><script>alert(1)</script>", "page.html", "text/html"), 415),
        (upload_form(b"<svg onload=alert(1)>", "x.png", "image/png"), 415),  # the bytes are not a PNG
        (upload_form(b"%PDF-1.4 fake", "x.png", "image/png"), 415),  # a PDF claiming to be an image
    ]
    for form, status in refused:
        resp = await client.post("/api/widget/upload", data=form, headers=auth)
        assert resp.status == status, await resp.text()
        assert "error" in await resp.json()
    upload_dir = tmp_path / "uploads"
    assert not upload_dir.exists() or list(upload_dir.iterdir()) == []
    assert await client.app[STORES].kv.scan("widget:upload:") == []
    anonymous = await client.post("/api/widget/upload", data=upload_form(PNG, "a.png", "image/png"))
    assert anonymous.status == 401

    resp = await client.post("/api/widget/upload", data=upload_form(PNG, "../../收据.png", "image/png"), headers=auth)
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["name"] == "收据.png" and body["mime"] == "image/png" and body["size"] == len(PNG)
    stored = list(upload_dir.iterdir())
    assert [p.name for p in stored] == [body["attachment_id"]]  # named by id only, outside any static folder
    download = await client.get(body["url"])
    assert download.status == 200 and await download.read() == PNG
    assert download.headers["Content-Type"] == "image/png"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert (await client.get("/api/widget/files/att_" + "x" * 24)).status == 404
    assert (await client.get("/api/widget/files/..%2F..%2Fkefu.db")).status == 404

    ws, _ = await connect(client, session["token"])
    await ws.send_json({"type": "message", "client_msg_id": "uuid-file-001", "attachments": [body["attachment_id"]]})
    got = await frames_until(ws, lambda f: f["type"] == "ack")
    user = messages(got, "user")[0]
    assert user["attachments"][0]["url"] == body["url"] and user["text"] == ""
    event = next(e for e in await stored_events(client, session["conversation_id"]) if e["event"] == "user")
    assert event["metadata"]["attachments"][0]["id"] == body["attachment_id"] and event["text"] == "收据.png"
    # another conversation cannot attach this file
    other = await new_session(client)
    ws2, _ = await connect(client, other["token"])
    await ws2.send_json({"type": "message", "client_msg_id": "uuid-file-002", "attachments": [body["attachment_id"]]})
    error = (await frames_until(ws2, lambda f: f["type"] == "error"))[-1]
    assert error["code"] == "bad_attachment"
    assert await stored_events(client, other["conversation_id"]) == []
    await ws.close()
    await ws2.close()


# -- S11: several tabs -----------------------------------------------------------------------------------------

async def asked_on_one_tab_seen_on_another(asking, watching, text: str, client_msg_id: str) -> None:
    await say(asking, text, client_msg_id)
    seen = await frames_until(watching, lambda f: f["type"] == "message" and f["role"] == "bot")
    assert messages(seen, "user")[0]["client_msg_id"] == client_msg_id


async def agent_message_on(tabs: list, text: str) -> None:
    for tab in tabs:
        got = await frames_until(tab, lambda f: f["type"] == "message" and f["role"] == "agent")
        assert got[-1]["text"] == text


async def test_s11_every_tab_of_a_conversation_gets_its_events_and_no_one_else_does(client):
    session = await new_session(client)
    stranger = await new_session(client)
    tab1, _ = await connect(client, session["token"])
    tab2, _ = await connect(client, session["token"])
    other, _ = await connect(client, stranger["token"])
    await asked_on_one_tab_seen_on_another(tab1, tab2, "can I get an invoice?", "uuid-tabs-001")
    await client.app[STORES].trackers.append(session["conversation_id"], [agent_message("Invoice sent!")])
    await agent_message_on([tab1, tab2], "Invoice sent!")
    await other.send_json({"type": "ping"})
    assert await other.receive_json(timeout=5) == {"type": "pong"}, "the stranger saw nothing of it"
    assert client.app[WIDGET].open.rooms.members(session["conversation_id"]) == 2
    for ws in (tab1, tab2, other):
        await ws.close()
    await asyncio.sleep(0.05)
    assert client.app[WIDGET].open.rooms.members(session["conversation_id"]) == 0


@pytest.fixture
async def two_workers(aiohttp_client, starter_model, tmp_path, redis_url):
    """Two workers sharing one real redis-server (their own key prefix)."""
    prefix = f"test-{uuid4().hex[:10]}"
    return [await aiohttp_client(widget_app(starter_model, tmp_path / name, redis_url, prefix)) for name in "ab"]


@pytest.mark.redis
async def test_s11_tabs_on_two_workers_sharing_redis_both_get_the_answer(two_workers):
    worker_a, worker_b = two_workers
    session = await new_session(worker_a)
    resumed = await new_session(worker_b, session["token"])  # the session is shared: same conversation
    assert resumed["conversation_id"] == session["conversation_id"] and not resumed["new"]
    tab_a, _ = await connect(worker_a, session["token"])
    tab_b, _ = await connect(worker_b, session["token"])
    await asked_on_one_tab_seen_on_another(tab_a, tab_b, "how long does delivery take?", "uuid-redis-001")
    await worker_b.app[STORES].trackers.append(session["conversation_id"], [agent_message("Hello from worker B")])
    await agent_message_on([tab_a], "Hello from worker B")
    await tab_a.close()
    await tab_b.close()


# -- order: what the bus loses, and a close racing a message ---------------------------------------------------

@pytest.mark.redis
async def test_open_sockets_get_what_the_bus_lost_as_soon_as_their_subscription_is_back(two_workers, redis_url):
    """Redis pub/sub loses what is published while a worker reconnects. The bubbles open on the workers show it
    as soon as their subscription is back, not with the conversation's next event (which may never come)."""
    worker_a, worker_b = two_workers
    session = await new_session(worker_a)
    cid = session["conversation_id"]
    tab_a, _ = await connect(worker_a, session["token"])
    tab_b, _ = await connect(worker_b, session["token"])
    console = worker_b.app[STORES].trackers  # the agent works on worker B
    await console.append(cid, [agent_message("Before the drop")])
    await agent_message_on([tab_a, tab_b], "Before the drop")
    admin, channel = aioredis.from_url(redis_url), worker_a.app[STORES].bus.channel
    try:
        for attempt in range(20):
            # every worker loses its subscription; the agent's reply is stored before they are back
            await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
            lost = f"Lost by the bus ({attempt})"
            await console.append(cid, [agent_message(lost)])
            if (await admin.pubsub_numsub(channel))[0][1] == 0:
                break  # nobody was subscribed when it was published: pub/sub never delivers it
        else:
            pytest.fail("the workers resubscribed before anything could be published in between")
    finally:
        await admin.aclose()
    for tab in (tab_a, tab_b):
        got = await frames_until(tab, lambda f: f.get("text") == lost, timeout=15)
        assert_in_order(got)
    await tab_a.close()
    await tab_b.close()


async def test_an_agents_close_racing_the_shoppers_message_reaches_the_panel_in_order(
        aiohttp_client, starter_model, tmp_path):
    client = await aiohttp_client(widget_app(starter_model, tmp_path, handoff=open_all_day(), message_burst=20))
    li = await agent_login(client, name="Li")
    session = await new_session(client)
    cid = session["conversation_id"]
    ws, _ = await connect(client, session["token"])
    shown: list[dict] = []
    for round_ in range(4):
        await ws.send_json({"type": "handoff_request", "client_msg_id": f"uuid-human-{round_}", "title": "A person"})
        shown += await frames_until(ws, lambda f: f.get("state") == "queued")
        claimed = await client.post(f"/api/agent/conversations/{cid}/claim", headers=li)
        assert claimed.status == 200, await claimed.text()
        shown += await frames_until(ws, lambda f: f.get("state") == "assigned")
        # the agent closes while the shopper writes (who starts first alternates)
        closing = client.post(f"/api/agent/conversations/{cid}/close", json={"resolution": "resolved"}, headers=li)
        writing = say(ws, "thanks, that's all", f"uuid-thanks-{round_}")
        if round_ % 2:
            acked, closed = await asyncio.gather(writing, closing)
        else:
            closed, acked = await asyncio.gather(closing, writing)
        assert closed.status == 200, await closed.text()
        shown += acked
        stored = await stored_events(client, cid)
        last = protocol.last_shown(stored, stored[-1]["seq"])
        if not any(f.get("seq") == last for f in shown):
            shown += await frames_until(ws, lambda f, last=last: f.get("seq") == last)
    stored = await stored_events(client, cid)
    frames = assert_in_order(shown)
    assert [f["seq"] for f in frames] == [f["seq"] for f in protocol.frames(stored)], "each event once, in order"
    rounds = " ".join(what_the_shopper_sees(f) for f in frames).split("ask-for-a-person")[1:]
    for seen in rounds:  # whoever won the race, the end notice never shows after the bot's answer to "thanks"
        after_claim = seen.split("assigned")[-1]
        assert "thanks" in after_claim and "answer" not in after_claim.split("ended")[0], rounds
    assert len(rounds) == 4
    await ws.close()


def what_the_shopper_sees(frame: dict) -> str:
    client_msg_id = frame.get("client_msg_id") or ""
    if client_msg_id.startswith(("uuid-human", "uuid-thanks")):
        return "ask-for-a-person" if client_msg_id.startswith("uuid-human") else "thanks"
    if frame["type"] == "handoff":
        return frame["state"]
    return "rating" if frame.get("rating") else "answer" if frame.get("role") == "bot" else frame["type"]


async def test_a_silent_socket_is_pinged_and_closed_one_that_answers_stays(aiohttp_client, starter_model, tmp_path):
    """One heartbeat for all of a worker's sockets: a tab whose browser no longer answers pings (a laptop shut,
    a network gone) is closed (1001, "no pong") so its conversation's room is not kept for nobody; a live tab
    answers and stays; a client's own ping gets a pong."""
    client = await aiohttp_client(widget_app(starter_model, tmp_path, heartbeat_s=1.0))
    session = await new_session(client)
    live, _ = await connect(client, session["token"])
    frames: list[dict] = []

    async def read_live() -> None:  # a browser answers pings whatever the page does; aiohttp's client while reading
        async for message in live:
            if message.type == aiohttp.WSMsgType.TEXT:
                frames.append(json.loads(message.data))

    reader = asyncio.get_running_loop().create_task(read_live())
    silent = await client.ws_connect("/api/widget/ws", origin=origin(client), autoping=False)
    await silent.send_json({"type": "hello", "token": session["token"], "last_seq": 0})
    pings = 0
    async with asyncio.timeout(10):
        while True:
            message = await silent.receive()
            if message.type == aiohttp.WSMsgType.PING:
                pings += 1  # not answered
            elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                break
    assert pings >= 1 and silent.close_code == 1001
    await asyncio.sleep(1.5)  # more heartbeats
    assert not live.closed
    await live.ping(b"are you there")
    await live.send_json({"type": "message", "client_msg_id": "uuid-heartbeat-001", "text": "hello"})
    async with asyncio.timeout(10):
        while not any(f["type"] == "ack" for f in frames):
            await asyncio.sleep(0.05)
    assert not live.closed
    reader.cancel()
