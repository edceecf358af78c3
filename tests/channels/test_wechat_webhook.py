"""/webhooks/wechat end to end: the real app (starter model, real stores) and a fake WeChat API server.

Covers W1–W13 and the delivery rules: passive reply within the budget, `success` + custom-send after it,
MsgId dedupe (also while the first delivery is still running), agent replies from the console through
custom-send, the 48 h / 5-message allowance with pending messages shown in the conversation's meta.
"""

from __future__ import annotations

import asyncio
import os
import time
from urllib.parse import urlencode

import pytest

from bot.app_keys import AGENT, STORES
from bot.channels.push.inbox import RECOVER_AFTER_S
from bot.channels.wechat import WECHAT, xml
from bot.channels.wechat.crypto import MessageCipher, signature
from bot.notices import shopper_text
from tests.channels.conftest import (
    OPENID,
    ROOT,
    WX_ACCOUNT,
    WX_AES_KEY,
    WX_APPID,
    WX_TOKEN,
    text_xml,
    wechat_env,
    wechat_push,
)
from tests.channels.vectors import INBOUND_ENCRYPT

APPENDIX_QUERY = ("signature=de54333f03a2e4afd2dac01317f8302e7c10f0bd&timestamp=1700000000&nonce=1357924680"
                  "&encrypt_type=aes&msg_signature=a47774789d900793bf8a500ae628245bbc332934")
APPENDIX_BODY = (f"<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><Encrypt><![CDATA[{INBOUND_ENCRYPT}]]>"
                 "</Encrypt></xml>").encode()
CID = f"wechat:{OPENID}"


def open_reply(body: str) -> xml.Fields:
    """Check the encrypted passive reply like WeChat would, and return its inner fields."""
    outer = xml.parse(body.encode(), 65536)
    encrypted = outer.get("Encrypt")
    assert outer.get("MsgSignature") == signature(WX_TOKEN, outer.get("TimeStamp"), outer.get("Nonce"), encrypted)
    return xml.parse(MessageCipher(WX_AES_KEY, WX_APPID).decrypt(encrypted).encode(), 65536)


async def post(client, query: str, body: bytes):
    return await client.post(f"/webhooks/wechat?{query}", data=body, headers={"Content-Type": "text/xml"})


async def bot_texts(client, cid: str = CID) -> list[str]:
    events = await client.app[STORES].trackers.events(cid)
    return [e["text"] for e in events if e["event"] == "bot" and e.get("text")]


@pytest.fixture
async def wechat(make_client, fake_wechat):
    return await make_client(wechat_env(fake_wechat.url, WECHAT_NOTICE_GRACE_S="0.2"))


async def test_url_verification_echoes_echostr_and_refuses_bad_signatures(wechat):
    wechat.app[WECHAT].clock = lambda: 1700000003.0
    ok = await wechat.get(f"/webhooks/wechat?{APPENDIX_QUERY.split('&encrypt_type')[0]}&echostr=5927782489442352469")
    assert ok.status == 200 and await ok.text() == "5927782489442352469"
    assert ok.content_type == "text/plain"
    bad = APPENDIX_QUERY.replace("de54333f", "de54333e").split("&encrypt_type")[0]
    assert (await wechat.get(f"/webhooks/wechat?{bad}&echostr=1")).status == 403
    assert (await wechat.get("/webhooks/wechat?timestamp=1700000000&echostr=1")).status == 403


async def test_appendix_a_question_gets_an_encrypted_chinese_passive_reply(wechat, fake_wechat):
    wechat.app[WECHAT].clock = lambda: 1700000001.0
    started = time.perf_counter()
    resp = await post(wechat, APPENDIX_QUERY, APPENDIX_BODY)
    elapsed = time.perf_counter() - started
    assert resp.status == 200, await resp.text()
    reply = open_reply(await resp.text())
    assert reply.get("ToUserName") == OPENID and reply.get("FromUserName") == WX_ACCOUNT
    assert reply.get("MsgType") == "text" and int(reply.get("CreateTime")) == 1700000001
    answer = reply.get("Content")
    assert any("\u4e00" <= ch <= "\u9fff" for ch in answer), answer
    assert answer == "\n\n".join(await bot_texts(wechat))
    events = await wechat.app[STORES].trackers.events(CID)
    user = [e for e in events if e["event"] == "user"]
    assert [(u["text"], u["message_id"], u["input_channel"]) for u in user] == \
        [("你好，我要退货", "24000000000000001", "wechat")]
    assert (await wechat.app[STORES].trackers.get_meta(CID))["channel"] == "wechat"
    assert fake_wechat.sends() == [], "a passive reply, no custom-send"
    print(f"\nAppendix A passive reply latency: {elapsed * 1000:.0f} ms")


@pytest.mark.parametrize("question, chinese", [("快递几天能到？", True), ("how long does delivery take?", False)])
async def test_fresh_signed_questions_get_answers_in_their_language(wechat, question, chinese):
    resp = await post(wechat, *wechat_push(text_xml(question, f"2400000000000{int(chinese)}")))
    reply = open_reply(await resp.text())
    assert reply.get("Content") and (any("\u4e00" <= c <= "\u9fff" for c in reply.get("Content")) == chinese)


def _forged() -> dict[str, tuple[str, bytes]]:
    now = int(time.time())
    query, body = wechat_push(text_xml("我要退货", "24000000000000077"), timestamp=now)
    flipped = query.replace("msg_signature=", "msg_signature=0")[:-1]
    other_app = MessageCipher(WX_AES_KEY, "wx_other_app_id___").encrypt(text_xml("hi", "24000000000000078"))
    signed = {"signature": signature(WX_TOKEN, str(now), "1"), "timestamp": str(now), "nonce": "1",
              "encrypt_type": "aes", "msg_signature": signature(WX_TOKEN, str(now), "1", other_app)}
    stale_query, stale_body = wechat_push(text_xml("我要退货", "24000000000000079"), timestamp=now - 301)

    def signed_ciphertext(ciphertext: str) -> tuple[str, bytes]:
        query = {"signature": signature(WX_TOKEN, str(now), "2"), "timestamp": str(now), "nonce": "2",
                 "encrypt_type": "aes", "msg_signature": signature(WX_TOKEN, str(now), "2", ciphertext)}
        return urlencode(query), f"<xml><Encrypt><![CDATA[{ciphertext}]]></Encrypt></xml>".encode()

    good = MessageCipher(WX_AES_KEY, WX_APPID).encrypt(text_xml("hi", "24000000000000081"))
    plain_query, plain_body = wechat_push(text_xml("我要退货", "24000000000000080"), encrypt=False)
    return {
        "msg_signature flipped": (flipped, body),
        "Encrypt changed, not re-signed": (query, body.replace(b"<![CDATA[", b"<![CDATA[A", 2)),
        "signature wrong": (query.replace("signature=", "signature=f", 1), body),
        "AppID mismatch": (urlencode(signed), f"<xml><Encrypt><![CDATA[{other_app}]]></Encrypt></xml>".encode()),
        "stale timestamp (replay)": (stale_query, stale_body),
        "plaintext while safe": (plain_query, plain_body),
        "no signature": ("timestamp=1&nonce=2", body),
        "undecodable base64 (signed)": signed_ciphertext("@@not-base64@@"),
        "bad padding (signed)": signed_ciphertext(good[:-8] + "AAAAAAA="),
    }


async def test_forged_or_replayed_pushes_get_403_and_nothing_is_stored(wechat, fake_wechat):
    for name, (query, body) in _forged().items():
        resp = await post(wechat, query, body)
        assert resp.status == 403, name
    assert await wechat.app[STORES].trackers.conversations() == []
    assert fake_wechat.calls == []


async def test_bad_bodies_get_400_and_nothing_is_stored(wechat):
    oversize = wechat_push(text_xml("x" * 70_000, "24000000000000090"))
    no_type = wechat_push(f"<xml><ToUserName>{WX_ACCOUNT}</ToUserName><FromUserName>{OPENID}</FromUserName></xml>")
    query, _ = wechat_push(text_xml("hi", "24000000000000091"))
    doctype = b'<!DOCTYPE xml [<!ENTITY e "x">]><xml><Encrypt>&e;</Encrypt></xml>'
    for query_body in (oversize, no_type, (query, doctype), (query, b"not xml at all")):
        resp = await post(wechat, *query_body)
        assert resp.status == 400, await resp.text()
    assert await wechat.app[STORES].trackers.conversations() == []


async def test_a_duplicate_delivery_is_answered_once(wechat):
    push = wechat_push(text_xml("运费多少钱", "24000000000000100"))
    first = await post(wechat, *push)
    assert open_reply(await first.text()).get("Content")
    again = await post(wechat, *push)
    assert again.status == 200 and await again.text() == "success"
    events = await wechat.app[STORES].trackers.events(CID)
    assert sum(e["event"] == "user" for e in events) == 1


async def test_a_slow_bot_gets_success_then_exactly_one_custom_send(make_client, fake_wechat):
    client = await make_client(wechat_env(fake_wechat.url, WECHAT_REPLY_BUDGET_S="0.1"))
    agent = client.app[AGENT]
    real_handle, calls = agent.handle, []

    async def slow_handle(message, resend=False):
        calls.append(message.message_id)
        await asyncio.sleep(1.5)
        return await real_handle(message, resend)

    agent.handle = slow_handle
    push = wechat_push(text_xml("运费多少钱", "24000000000000200"))
    started = time.perf_counter()
    first = await post(client, *push)
    # answered within the budget (0.1 s), long before the bot (1.5 s): slack for a busy machine
    assert await first.text() == "success" and time.perf_counter() - started < 1.2
    retry = await post(client, *push)  # WeChat retries while the first delivery is still running
    assert await retry.text() == "success"
    await fake_wechat.wait_for(lambda: fake_wechat.sends())
    await asyncio.sleep(0.3)
    assert calls == ["24000000000000200"], "no second bot call"
    [send] = fake_wechat.sends()
    assert send.body["touser"] == OPENID
    assert send.body["text"]["content"] == "\n\n".join(await bot_texts(client))
    assert any(c.path.endswith("/typing") for c in fake_wechat.calls), "typing while the answer is late"
    meta = (await client.app[STORES].trackers.get_meta(CID))["wechat"]
    assert meta["quota_left"] == 4 and meta["pending"] == 0
    assert await client.app[STORES].kv.scan(client.app[WECHAT].inbox.prefix) == []  # answered: nothing kept


async def test_a_message_answered_success_by_a_worker_that_stopped_is_answered_by_the_next_sweep(make_client,
                                                                                                 fake_wechat):
    client = await make_client(wechat_env(fake_wechat.url, WECHAT_REPLY_BUDGET_S="0.1"))
    agent, channel, kv = client.app[AGENT], client.app[WECHAT], client.app[STORES].kv
    real_handle, stuck = agent.handle, asyncio.Event()

    async def stuck_handle(message, resend=False):
        await stuck.wait()  # the worker stops before the turn ends

    agent.handle = stuck_handle
    resp = await post(client, *wechat_push(text_xml("运费多少钱", "24000000000000900")))
    assert await resp.text() == "success"
    for task in asyncio.all_tasks():
        if task.get_name().startswith("wechat-turn:"):
            task.cancel()
    await asyncio.sleep(0.05)
    [(key, entry)] = await kv.scan(channel.inbox.prefix)
    assert fake_wechat.sends() == [] and entry["item"]["text"] == "运费多少钱"
    agent.handle = real_handle
    await channel.recover()  # too fresh: a worker may still be on it
    assert fake_wechat.sends() == []
    await kv.set(key, {**entry, "at": channel.now() - RECOVER_AFTER_S - 1})
    await channel.recover()
    await fake_wechat.wait_for(lambda: fake_wechat.sends())
    await asyncio.sleep(0.3)
    [send] = fake_wechat.sends()
    assert send.body["text"]["content"] == "\n\n".join(await bot_texts(client))
    assert await kv.scan(channel.inbox.prefix) == []


async def test_a_shopper_asks_for_a_person_and_the_agent_reply_arrives_by_custom_send(wechat, fake_wechat):
    resp = await post(wechat, *wechat_push(text_xml("转人工", "24000000000000300")))
    reply = open_reply(await resp.text()).get("Content")
    trackers = wechat.app[STORES].trackers
    events = await trackers.events(CID)
    assert any(e["event"] == "handoff_requested" and e["reason"] == "explicit_request" for e in events)
    # the handoff's answer (queued / closed / nobody on duty) comes with the passive reply, not by custom-send
    [notice] = [e for e in events if e["event"] in ("queued", "handoff_unavailable", "agent_assigned")]
    assert shopper_text(notice, "zh") in reply and "人工" in reply
    await trackers.append(CID, [{"event": "agent_message", "text": "您好，我是客服小李，马上帮您查。",
                                 "agent": "li", "agent_name": "小李"}])
    await fake_wechat.wait_for(lambda: fake_wechat.texts(OPENID))
    await asyncio.sleep(0.4)  # longer than the notice grace: the turn's notice was not sent a second time
    assert fake_wechat.texts(OPENID) == ["您好，我是客服小李，马上帮您查。"]
    meta = (await trackers.get_meta(CID))["wechat"]
    assert meta == {"quota_left": 4, "window_ends": pytest.approx(time.time() + 48 * 3600, abs=60), "pending": 0}


async def test_while_a_person_holds_the_chat_the_bot_is_silent_and_queue_updates_are_pushed(wechat, fake_wechat):
    await post(wechat, *wechat_push(text_xml("你好", "24000000000000310")))
    trackers = wechat.app[STORES].trackers
    # what the queue does when it puts the shopper in line (outside any shopper request)
    await trackers.append(CID, [{"event": "handoff_requested", "reason": "explicit_request", "candidates": []},
                                {"event": "queued", "position": 2, "eta_s": 300, "language": "zh"}])
    held = await post(wechat, *wechat_push(text_xml("我的订单号是 KF20240001", "24000000000000311")))
    assert await held.text() == "success"
    events = await trackers.events(CID)
    assert events[-1]["event"] == "user" and events[-1]["text"] == "我的订单号是 KF20240001"
    await fake_wechat.wait_for(lambda: fake_wechat.texts(OPENID))
    assert fake_wechat.texts(OPENID) == [shopper_text({"event": "queued", "position": 2, "eta_s": 300}, "zh")]


async def test_an_agent_reply_the_event_bus_dropped_is_caught_up_and_sent_once(wechat, fake_wechat):
    await post(wechat, *wechat_push(text_xml("你好", "24000000000000330")))  # opens the 48 h window
    stores, channel = wechat.app[STORES], wechat.app[WECHAT]
    publish = stores.bus.publish_nowait
    stores.bus.publish_nowait = lambda conversation_id, event: None  # what a worker reconnecting to Redis misses
    reply = "刚才网络断了，您的包裹明天到。"
    await stores.trackers.append(CID, [{"event": "agent_message", "text": reply, "agent": "li"}])
    stores.bus.publish_nowait = publish
    await asyncio.sleep(0.3)
    assert fake_wechat.texts(OPENID) == []
    await channel.forwarder.catch_up(now=time.time() + 5)  # too recent: the bus may still bring it
    await asyncio.sleep(0.2)
    assert fake_wechat.texts(OPENID) == []
    await channel.forwarder.catch_up(now=time.time() + 20)
    await fake_wechat.wait_for(lambda: fake_wechat.texts(OPENID))
    await channel.forwarder.catch_up(now=time.time() + 40)  # the next sweep sends nothing twice
    await asyncio.sleep(0.3)
    assert fake_wechat.texts(OPENID) == [reply]


async def test_a_long_agent_reply_is_split_into_messages_within_the_size_limit(wechat, fake_wechat):
    await post(wechat, *wechat_push(text_xml("你好", "24000000000000320")))
    long_reply = "\n".join(f"第{n}步：请在订单页面点击“申请退货”，填写原因并上传照片。" for n in range(60))
    await wechat.app[STORES].trackers.append(CID, [{"event": "agent_message", "text": long_reply, "agent": "li"}])
    await fake_wechat.wait_for(lambda: len(fake_wechat.texts(OPENID)) >= 3)
    await asyncio.sleep(0.2)
    parts = fake_wechat.texts(OPENID)
    assert len(parts) == 3 and all(len(p.encode()) <= 2000 for p in parts)
    assert "\n".join(parts) == long_reply


async def test_quota_used_up_keeps_the_agent_reply_pending_until_the_shopper_writes(wechat, fake_wechat):
    await post(wechat, *wechat_push(text_xml("你好", "24000000000000400")))
    fake_wechat.fail("send", body={"errcode": 45047, "errmsg": "out of response count limit"})
    trackers = wechat.app[STORES].trackers
    await trackers.append(CID, [{"event": "agent_message", "text": "稍等，我在查", "agent": "li"}])

    async def meta():
        return (await trackers.get_meta(CID)).get("wechat") or {}

    for _ in range(200):
        if (await meta()).get("pending") == 1:
            break
        await asyncio.sleep(0.02)
    assert await meta() == {"quota_left": 0, "window_ends": pytest.approx(time.time() + 48 * 3600, abs=60),
                            "pending": 1}
    assert len(fake_wechat.sends(delivered_only=False)) == 1, "no blind retry"
    await trackers.append(CID, [{"event": "agent_message", "text": "还在吗？", "agent": "li"}])
    await asyncio.sleep(0.2)
    assert len(fake_wechat.sends(delivered_only=False)) == 1, "nothing sent while the quota is used up"
    assert (await meta())["pending"] == 2
    await post(wechat, *wechat_push(text_xml("在的", "24000000000000401")))  # a new allowance
    await fake_wechat.wait_for(lambda: fake_wechat.texts(OPENID) == ["稍等，我在查", "还在吗？"])
    assert (await meta())["pending"] == 0 and (await meta())["quota_left"] == 3


async def test_closed_window_is_known_locally_and_the_token_is_refreshed_once(wechat, fake_wechat):
    trackers, channel = wechat.app[STORES].trackers, wechat.app[WECHAT]
    await post(wechat, *wechat_push(text_xml("你好", "24000000000000500")))
    await trackers.append(CID, [{"event": "agent_message", "text": "第一条", "agent": "li"}])
    await fake_wechat.wait_for(lambda: fake_wechat.texts() == ["第一条"])
    fake_wechat.expire_token()
    await trackers.append(CID, [{"event": "agent_message", "text": "第二条", "agent": "li"}])
    await fake_wechat.wait_for(lambda: fake_wechat.texts() == ["第一条", "第二条"])
    assert len(fake_wechat.token_calls()) == 2
    assert [c.answered["errcode"] for c in fake_wechat.sends(delivered_only=False)] == [0, 42001, 0]
    real = time.time
    channel.clock = lambda: real() + 49 * 3600  # the shopper's 48 h are over
    await trackers.append(CID, [{"event": "agent_message", "text": "第三条", "agent": "li"}])
    for _ in range(200):
        if (await trackers.get_meta(CID))["wechat"]["pending"] == 1:
            break
        await asyncio.sleep(0.02)
    assert (await trackers.get_meta(CID))["wechat"] == {"quota_left": 0, "window_ends": None, "pending": 1}
    assert len(fake_wechat.sends(delivered_only=False)) == 3, "not even tried: the window is closed"


async def test_images_voice_and_events(wechat, fake_wechat):
    image = (f"<xml><ToUserName>{WX_ACCOUNT}</ToUserName><FromUserName>{OPENID}</FromUserName><CreateTime>"
             f"{int(time.time())}</CreateTime><MsgType>image</MsgType><PicUrl>http://mmbiz/p.jpg</PicUrl>"
             "<MediaId>MEDIA_1</MediaId><MsgId>24000000000000600</MsgId></xml>")
    resp = await post(wechat, *wechat_push(image))
    assert resp.status == 200
    events = await wechat.app[STORES].trackers.events(CID)
    [user] = [e for e in events if e["event"] == "user"]
    assert user["text"] == "[图片]"
    assert user["metadata"]["media"] == {"type": "image", "media_id": "MEDIA_1", "url": "http://mmbiz/p.jpg"}
    follow = (f"<xml><ToUserName>{WX_ACCOUNT}</ToUserName><FromUserName>oFOLLOWER</FromUserName><CreateTime>"
              f"{int(time.time())}</CreateTime><MsgType>event</MsgType><Event>subscribe</Event></xml>")
    greeting = await post(wechat, *wechat_push(follow))
    assert "客服" in open_reply(await greeting.text()).get("Content")
    assert await (await post(wechat, *wechat_push(follow))).text() == "success", "same user+time+event: once"
    odd = (f"<xml><ToUserName>{WX_ACCOUNT}</ToUserName><FromUserName>oODD</FromUserName><CreateTime>1</CreateTime>"
           "<MsgType>miniprogrampage</MsgType><MsgId>1</MsgId></xml>")
    assert await (await post(wechat, *wechat_push(odd))).text() == "success"
    assert not await wechat.app[STORES].trackers.exists("wechat:oODD")


async def test_an_internal_error_after_authentication_is_answered_success(wechat, logs):
    async def broken(message, resend=False):
        raise RuntimeError("engine exploded")

    wechat.app[AGENT].handle = broken
    resp = await post(wechat, *wechat_push(text_xml("你好", "24000000000000700")))
    assert resp.status == 200 and await resp.text() == "success"
    assert "engine exploded" in logs.text and WX_TOKEN not in logs.text


async def test_plaintext_mode_only_when_configured(make_client, fake_wechat):
    env = {**wechat_env(fake_wechat.url, WECHAT_MODE="plaintext"), "WECHAT_ENCODING_AES_KEY": ""}
    client = await make_client(env)
    resp = await post(client, *wechat_push(text_xml("运费多少钱", "24000000000000800"), encrypt=False))
    reply = xml.parse((await resp.text()).encode(), 65536)
    assert reply.get("ToUserName") == OPENID and reply.get("Content")
    assert (await post(client, *wechat_push(text_xml("hi", "24000000000000801")))).status == 403  # no key


async def test_the_channel_is_not_mounted_without_settings(make_client):
    client = await make_client({})
    assert (await client.get("/webhooks/wechat?echostr=1")).status == 404
    assert (await client.post("/webhooks/wechat", data=b"<xml/>")).status == 404


@pytest.mark.parametrize("env, message", [
    ({"WECHAT_TOKEN": WX_TOKEN}, "Error: the wechat channel is partly configured: set WECHAT_APPID (or "
                                 "channels.wechat.appid), WECHAT_APPSECRET (or channels.wechat.appsecret)"),
    ({"WECHAT_TOKEN": WX_TOKEN, "WECHAT_APPID": WX_APPID, "WECHAT_APPSECRET": "s3cret-value",
      "WECHAT_ENCODING_AES_KEY": "not-a-key-s3cret"}, "Error: invalid wechat channel settings: "),
])
def test_kefu_run_reports_bad_channel_settings_in_one_line(monkeypatch, capsys, env, message):
    from bot.cli import main

    served = []
    monkeypatch.setattr("aiohttp.web.run_app", lambda *args, **kwargs: served.append(args))
    monkeypatch.setattr("logging.basicConfig", lambda **kwargs: None)  # no root handler on capsys's stream
    monkeypatch.chdir(ROOT)
    for name in list(os.environ):
        if name.startswith(("WECHAT_", "MESSENGER_")):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["run", "--model", "models/unused.tar.gz"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1 and "Traceback" not in err
    assert "s3cret" not in err and served == []
