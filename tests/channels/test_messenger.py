"""/webhooks/messenger end to end: the real app (starter model, real stores) and a fake Graph API (F1–F18)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict

import pytest

from bot.app_keys import STORES
from bot.channels.messenger import MESSENGER, MessengerChannel, signature
from bot.channels.messenger.inbound import Incoming
from bot.channels.push.inbox import RECOVER_AFTER_S
from bot.channels.settings import ConfigError, load_settings
from tests.channels.conftest import (
    FB_PAGE_TOKEN,
    FB_SECRET,
    FB_VERIFY,
    fb_headers,
    fb_text,
    messenger_body,
    messenger_env,
)

APPENDIX_BODY = (b'{"object":"page","entry":[{"id":"111","time":1700000000000,"messaging":[{"sender":{"id":"2222"},'
                 b'"recipient":{"id":"111"},"timestamp":1700000000000,"message":{"mid":"m_TEST1","text":'
                 b'"\\u4f60\\u597d"}}]}]}')
APPENDIX_SIG256 = "sha256=ce503ffd07ad4d861713b564dd145529a1cd5154b6f09e58392772def1d2d94b"
APPENDIX_SIG1 = "sha1=8066cbbd5393f49384387aa55a956909e5a1d7cf"


@pytest.fixture
async def messenger(make_client, fake_graph):
    return await make_client(messenger_env(fake_graph.url, MESSENGER_NOTICE_GRACE_S="0.2"))


async def post(client, body: bytes, headers: dict[str, str] | None = None):
    return await client.post("/webhooks/messenger", data=body, headers=headers or fb_headers(body))


async def events_of(client, psid: str) -> list[dict]:
    return await client.app[STORES].trackers.events(f"messenger:{psid}")


async def bot_texts(client, psid: str) -> list[str]:
    return [e["text"] for e in await events_of(client, psid) if e["event"] == "bot" and e.get("text")]


async def settle(client) -> None:
    """Wait until the channel has no background work left."""
    channel = client.app[MESSENGER]
    for _ in range(500):
        if not len(channel.serial) and not len(channel.tasks):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("background work did not finish")


def test_signature_vector_and_settings():
    assert signature.sign(FB_SECRET, APPENDIX_BODY) == APPENDIX_SIG256
    assert signature.verify(FB_SECRET, APPENDIX_BODY, APPENDIX_SIG256)
    assert not signature.verify(FB_SECRET, APPENDIX_BODY, APPENDIX_SIG1)
    assert not signature.verify(FB_SECRET, APPENDIX_BODY, None)
    assert not signature.verify(FB_SECRET, APPENDIX_BODY, APPENDIX_SIG256[:-1] + "0")
    assert load_settings(MessengerChannel, None, {}) is None
    settings = load_settings(MessengerChannel, None, messenger_env("http://x"))
    assert settings.human_agent is False and settings.graph_api_version == "v25.0"
    assert FB_PAGE_TOKEN not in repr(settings) + settings.model_dump_json() and FB_SECRET not in repr(settings)
    with pytest.raises(ConfigError, match="MESSENGER_PAGE_ACCESS_TOKEN"):
        load_settings(MessengerChannel, None, {"MESSENGER_VERIFY_TOKEN": "v", "MESSENGER_APP_SECRET": "s"})


async def test_verification_get(messenger):
    ok = await messenger.get("/webhooks/messenger", params={"hub.mode": "subscribe", "hub.verify_token": FB_VERIFY,
                                                            "hub.challenge": "1158201444"})
    assert ok.status == 200 and await ok.text() == "1158201444"
    for params in ({"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
                   {"hub.mode": "unsubscribe", "hub.verify_token": FB_VERIFY, "hub.challenge": "1"},
                   {"hub.challenge": "1"}):
        assert (await messenger.get("/webhooks/messenger", params=params)).status == 403


async def test_appendix_a_body_and_signature_are_accepted_and_answered(messenger, fake_graph):
    started = time.perf_counter()
    resp = await post(messenger, APPENDIX_BODY, {"X-Hub-Signature-256": APPENDIX_SIG256})
    assert resp.status == 200 and time.perf_counter() - started < 1.0
    await fake_graph.wait_for(lambda: fake_graph.messages("2222"))
    await settle(messenger)
    [user] = [e for e in await events_of(messenger, "2222") if e["event"] == "user"]
    assert user["text"] == "你好" and user["message_id"] == "m_TEST1" and user["input_channel"] == "messenger"
    assert fake_graph.texts("2222") == await bot_texts(messenger, "2222")
    send = fake_graph.messages("2222")[0]
    assert send.body["messaging_type"] == "RESPONSE" and send.body["recipient"] == {"id": "2222"}
    assert send.query["access_token"] == FB_PAGE_TOKEN and len(send.query["appsecret_proof"]) == 64
    assert await messenger.app[STORES].kv.scan(messenger.app[MESSENGER].inbox.prefix) == []  # nothing left over


async def test_a_message_a_stopped_worker_acknowledged_is_still_answered_once(messenger, fake_graph):
    """The worker answered Meta 200, claimed the mid and stopped before the bot turn: the next sweep answers."""
    channel, kv = messenger.app[MESSENGER], messenger.app[STORES].kv
    item = {"sender": {"id": "3333"}, "recipient": {"id": "111"}, "timestamp": 1700000000000,
            "message": {"mid": "m_LOST", "text": "how long does shipping take"}}
    lost = asdict(Incoming(kind="message", user_id="3333", page_id="111", data=item))
    busy = asdict(Incoming(kind="message", user_id="3334", page_id="111", data=item))
    await messenger.app[STORES].trackers.claim_message_id("messenger:in:m_LOST", 3600)
    assert await channel.inbox.keep("messenger:3333", "m_LOST", lost)
    assert await channel.inbox.keep("messenger:3334", "m_BUSY", busy)  # another worker is on it
    [(key, entry)] = await kv.scan(channel.inbox.prefix + "messenger:3333/")
    await kv.set(key, {**entry, "at": channel.now() - RECOVER_AFTER_S - 1})
    await channel.recover()
    await fake_graph.wait_for(lambda: fake_graph.messages("3333"))
    await settle(messenger)
    assert len(fake_graph.texts("3333")) == 1 and fake_graph.texts("3333") == await bot_texts(messenger, "3333")
    assert await channel.inbox.pending("messenger:3334") == [("m_BUSY", busy)] and not fake_graph.messages("3334")


async def test_bad_missing_or_legacy_only_signatures_get_403_and_nothing_happens(messenger, fake_graph):
    reserialised = json.dumps(json.loads(APPENDIX_BODY), ensure_ascii=False).encode()
    for headers, body in (({}, APPENDIX_BODY),
                          ({"X-Hub-Signature": APPENDIX_SIG1}, APPENDIX_BODY),
                          ({"X-Hub-Signature-256": APPENDIX_SIG1}, APPENDIX_BODY),
                          ({"X-Hub-Signature-256": "sha256=" + "0" * 64}, APPENDIX_BODY),
                          ({"X-Hub-Signature-256": APPENDIX_SIG256}, reserialised),
                          (fb_headers(APPENDIX_BODY, "another_secret"), APPENDIX_BODY)):
        assert (await post(messenger, body, {"Content-Type": "application/json", **headers})).status == 403
    assert (await post(messenger, b"{not json")).status == 400
    assert (await post(messenger, b'{"object": "user", "entry": []}')).status == 404
    # signed but hostile: deep nesting, a lone surrogate, NaN -> 400 with a reason, never 500 (issue 14)
    for hostile in (b'{"object": "page", "entry": ' + b"[" * 5000 + b"]" * 5000 + b"}",
                    b'{"object": "page", "entry": [{"messaging": [{"message": {"text": "\\ud800"}}]}]}',
                    b'{"object": "page", "entry": [], "x": NaN}'):
        resp = await post(messenger, hostile)
        assert resp.status == 400 and "not valid JSON" in (await resp.json())["error"], await resp.text()
    await asyncio.sleep(0.2)
    assert await messenger.app[STORES].trackers.conversations() == [] and fake_graph.calls == []


async def test_a_batch_of_three_events_in_two_entries_gets_three_answers_in_order(messenger, fake_graph):
    body = messenger_body([fb_text("3001", "m_b1", "你好"), fb_text("3001", "m_b2", "运费多少钱")],
                          [fb_text("3001", "m_b3", "how long does delivery take?")])
    started = time.perf_counter()
    resp = await post(messenger, body)
    assert resp.status == 200 and await resp.text() == "EVENT_RECEIVED"
    assert time.perf_counter() - started < 1.0
    await fake_graph.wait_for(lambda: len([e for e in fake_graph.calls if "message" in (e.body or {})]) >= 3)
    await settle(messenger)
    events = await events_of(messenger, "3001")
    assert [e["message_id"] for e in events if e["event"] == "user"] == ["m_b1", "m_b2", "m_b3"]
    answers = await bot_texts(messenger, "3001")
    assert len(answers) >= 3 and fake_graph.texts("3001") == answers  # every answer, in the turns' order
    assert all(c.body["messaging_type"] == "RESPONSE" and c.body["message"]["metadata"] == "kefu"
               for c in fake_graph.messages("3001"))


async def test_echoes_duplicates_receipts_and_standby(messenger, fake_graph):
    await post(messenger, messenger_body([fb_text("4001", "m_d1", "运费多少钱")]))
    await post(messenger, messenger_body([fb_text("4001", "m_d1", "运费多少钱")]))  # Meta retries
    own_echo = {"sender": {"id": "111"}, "recipient": {"id": "4001"}, "timestamp": 1,
                "message": {"mid": "m_e1", "is_echo": True, "app_id": 999, "metadata": "kefu", "text": "hi"}}
    receipts = [{"sender": {"id": "4001"}, "recipient": {"id": "111"}, "delivery": {"mids": ["x"], "watermark": 50}},
                {"sender": {"id": "4001"}, "recipient": {"id": "111"}, "read": {"watermark": 40}},
                {"sender": {"id": "4001"}, "recipient": {"id": "111"}, "read": {"watermark": 30}}]
    standby = json.dumps({"object": "page", "entry": [{"id": "111", "time": 1, "standby": [
        fb_text("4001", "m_s1", "hello from standby")]}]}).encode()
    await post(messenger, messenger_body([own_echo, *receipts]))
    await post(messenger, standby)
    await settle(messenger)
    events = await events_of(messenger, "4001")
    assert [e["message_id"] for e in events if e["event"] == "user"] == ["m_d1"]
    assert fake_graph.texts("4001") == await bot_texts(messenger, "4001")
    meta = (await messenger.app[STORES].trackers.get_meta("messenger:4001"))["messenger"]
    assert meta["delivery_watermark"] == 50 and meta["read_watermark"] == 40
    assert not meta.get("paused_until")


async def test_a_person_replying_from_page_inbox_pauses_the_bot(messenger, fake_graph):
    inbox_echo = {"sender": {"id": "111"}, "recipient": {"id": "4101"}, "timestamp": 1,
                  "message": {"mid": "m_h1", "is_echo": True, "app_id": 263902037430900, "text": "Hi, Anna here"}}
    await post(messenger, messenger_body([inbox_echo]))
    await post(messenger, messenger_body([fb_text("4101", "m_h2", "运费多少钱")]))
    await settle(messenger)
    events = await events_of(messenger, "4101")
    assert [e["event"] for e in events] == ["pause", "user"]
    assert fake_graph.messages("4101") == [] and fake_graph.actions("4101") == []
    # handover: the thread is passed back to us → the bot answers again
    passed = {"sender": {"id": "4101"}, "recipient": {"id": "111"}, "timestamp": 2,
              "pass_thread_control": {"new_owner_app_id": "1", "metadata": ""}}
    await post(messenger, messenger_body([passed, fb_text("4101", "m_h3", "运费多少钱")]))
    await fake_graph.wait_for(lambda: fake_graph.messages("4101"))
    assert "resume" in [e["event"] for e in await events_of(messenger, "4101")]
    # another app takes the thread: silent again
    answered = len(fake_graph.messages("4101"))
    taken = {"sender": {"id": "4101"}, "recipient": {"id": "111"}, "timestamp": 3,
             "take_thread_control": {"previous_owner_app_id": "1", "new_owner_app_id": "2"}}
    await post(messenger, messenger_body([taken, fb_text("4101", "m_h4", "still there?")]))
    await settle(messenger)
    assert len(fake_graph.messages("4101")) == answered
    assert [e["event"] for e in await events_of(messenger, "4101")][-2:] == ["pause", "user"]


async def test_agent_typing_is_forwarded_as_a_sender_action(messenger, fake_graph):
    await post(messenger, messenger_body([fb_text("4201", "m_y1", "你好")]))
    await fake_graph.wait_for(lambda: fake_graph.messages("4201"))
    await settle(messenger)
    bus = messenger.app[STORES].bus
    await bus.publish("messenger:4201", {"event": "typing", "role": "agent", "on": True, "timestamp": time.time()})
    await fake_graph.wait_for(lambda: fake_graph.actions("4201").count("typing_on") == 2)


async def test_quick_replies_postbacks_and_attachments_are_routed(messenger, fake_graph):
    quick = fb_text("5001", "m_q1", "Hi!")
    quick["message"]["quick_reply"] = {"payload": "/greet"}
    get_started = {"sender": {"id": "5002"}, "recipient": {"id": "111"}, "timestamp": 1,
                   "postback": {"mid": "m_p1", "title": "Get Started", "payload": "GET_STARTED"}}
    menu = {"sender": {"id": "5003"}, "recipient": {"id": "111"}, "timestamp": 1,
            "postback": {"mid": "m_p2", "title": "运费多少钱", "payload": "SHIPPING_COST"}}
    image = {"sender": {"id": "5004"}, "recipient": {"id": "111"}, "timestamp": 1, "message": {
        "mid": "m_a1", "attachments": [{"type": "image", "payload": {"url": "https://cdn.example/p.jpg"}}]}}
    await post(messenger, messenger_body([quick, get_started], [menu, image]))
    await fake_graph.wait_for(lambda: all(fake_graph.messages(p) for p in ("5001", "5002", "5003")))
    await settle(messenger)

    async def user_event(psid):
        return next(e for e in await events_of(messenger, psid) if e["event"] == "user")

    first = await user_event("5001")
    assert first["text"] == "/greet" and first["metadata"]["quick_reply"] == {"payload": "/greet", "title": "Hi!"}
    assert (await user_event("5002"))["text"] == "/greet"
    menu_event = await user_event("5003")
    assert menu_event["text"] == "运费多少钱" and menu_event["metadata"]["postback"]["payload"] == "SHIPPING_COST"
    picture = await user_event("5004")
    assert picture["text"] == "[image]"
    assert picture["metadata"]["media"] == {"type": "image", "url": "https://cdn.example/p.jpg"}


async def test_sender_actions_are_separate_and_their_failures_ignored(messenger, fake_graph):
    fake_graph.fail("action", times=2, status=500)
    await post(messenger, messenger_body([fb_text("6001", "m_t1", "运费多少钱")]))
    await fake_graph.wait_for(lambda: fake_graph.messages("6001"))
    assert sorted(fake_graph.actions("6001")) == ["mark_seen", "typing_on"]
    actions = [c for c in fake_graph.calls if "sender_action" in (c.body or {})]
    assert all(set(c.body) == {"recipient", "sender_action"} for c in actions)


async def test_invalid_token_is_not_retried_and_5xx_is_retried_with_a_bound(messenger, fake_graph, logs):
    fake_graph.fail("message", status=400, body={"error": {"code": 190, "type": "OAuthException",
                                                           "message": "Invalid OAuth access token"}})
    await post(messenger, messenger_body([fb_text("7001", "m_x1", "运费多少钱")]))
    await settle(messenger)
    assert len(fake_graph.messages("7001", delivered_only=False)) == 1
    meta = (await messenger.app[STORES].trackers.get_meta("messenger:7001"))["messenger"]
    assert meta["last_error"]["code"] == 190 and meta["last_error"]["kind"] == "config"
    assert "MESSENGER_PAGE_ACCESS_TOKEN" in logs.text and FB_PAGE_TOKEN not in logs.text

    fake_graph.fail("message", times=2, status=503)
    await post(messenger, messenger_body([fb_text("7002", "m_x2", "运费多少钱")]))
    await fake_graph.wait_for(lambda: fake_graph.messages("7002"))
    assert len(fake_graph.messages("7002", delivered_only=False)) == 3
    fake_graph.fail("message", times=10, status=500)
    await post(messenger, messenger_body([fb_text("7003", "m_x3", "运费多少钱")]))
    await settle(messenger)
    assert len(fake_graph.messages("7003", delivered_only=False)) == 3, "send_attempts = 3, then give up"


async def test_agent_replies_respect_the_24h_window_and_the_human_agent_tag(make_client, fake_graph):
    for human_agent in ("false", "true"):
        client = await make_client(messenger_env(fake_graph.url, MESSENGER_HUMAN_AGENT=human_agent),
                                   name=human_agent)
        psid = f"80{human_agent}"
        cid = f"messenger:{psid}"
        await post(client, messenger_body([fb_text(psid, f"m_w_{human_agent}", "运费多少钱")]))
        await settle(client)
        trackers, channel = client.app[STORES].trackers, client.app[MESSENGER]
        await trackers.append(cid, [{"event": "agent_message", "text": "within a day", "agent": "li"}])
        await fake_graph.wait_for(lambda psid=psid: "within a day" in fake_graph.texts(psid))
        assert fake_graph.messages(psid)[-1].body["messaging_type"] == "RESPONSE"
        real = time.time
        channel.clock = lambda real=real: real() + 25 * 3600
        await trackers.append(cid, [{"event": "agent_message", "text": "a day later", "agent": "li"}])
        await settle(client)
        await asyncio.sleep(0.1)
        await settle(client)
        meta = (await trackers.get_meta(cid))["messenger"]
        if human_agent == "true":
            last = fake_graph.messages(psid)[-1].body
            assert last["message"]["text"] == "a day later"
            assert (last["messaging_type"], last["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")
            assert meta["human_agent_until"] > meta["window_ends"]
        else:
            assert "a day later" not in fake_graph.texts(psid), "refused locally"
            assert meta["refused"] == 1 and meta["last_refused"]["reason"] == "window closed"
        channel.clock = lambda real=real: real() + 8 * 24 * 3600  # a week later: closed for everyone
        await trackers.append(cid, [{"event": "agent_message", "text": "a week later", "agent": "li"}])
        await asyncio.sleep(0.1)
        await settle(client)
        assert "a week later" not in fake_graph.texts(psid)


async def test_the_channel_is_not_mounted_without_settings(make_client):
    client = await make_client({})
    assert (await client.get("/webhooks/messenger")).status == 404
    assert (await post(client, APPENDIX_BODY, {"X-Hub-Signature-256": APPENDIX_SIG256})).status == 404
