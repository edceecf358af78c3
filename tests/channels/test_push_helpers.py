"""Shared push-channel pieces and WeChat rendering, on real SQLite stores: ordering, splitting, numbered options,
the allowance book, the built-in notice texts, Messenger quick-reply limits."""

from __future__ import annotations

import asyncio

import pytest

from bot.channels.messenger.config import MessengerSettings
from bot.channels.messenger.outbound import render as fb_render
from bot.channels.push.serial import KeyedSerial
from bot.channels.push.text import split_text, utf8_len
from bot.channels.wechat import xml
from bot.channels.wechat.allowance import AllowanceBook
from bot.channels.wechat.config import WeChatSettings
from bot.channels.wechat.outbound import chosen_payload, remember_options, render
from bot.dialogue import events as ev
from bot.notices import shopper_text
from bot.stores import create_stores
from tests.channels.conftest import WX_AES_KEY, WX_APPID


@pytest.fixture
async def stores(tmp_path):
    stores = create_stores(None, tmp_path / "kefu.db")
    yield stores
    await stores.close()


async def test_keyed_serial_keeps_order_per_key_and_survives_a_failing_job():
    serial, seen = KeyedSerial("t"), []

    def job(key, n, delay, fail=False):
        async def run():
            await asyncio.sleep(delay)
            if fail:
                raise RuntimeError("boom")
            seen.append((key, n))
        return run

    serial.submit("a", job("a", 1, 0.05))
    serial.submit("b", job("b", 1, 0.0))
    serial.submit("a", job("a", 2, 0.0, fail=True))
    serial.submit("a", job("a", 3, 0.0))
    await serial.drain(2)
    assert [n for k, n in seen if k == "a"] == [1, 3] and seen[0] == ("b", 1)
    assert len(serial) == 0


def test_split_text_respects_utf8_bytes_and_prefers_line_breaks():
    text = "第一段" * 300 + "\n" + "第二段" * 300
    parts = split_text(text, 2000, utf8_len)
    assert all(utf8_len(p) <= 2000 for p in parts) and "".join(parts).replace("\n", "") == text.replace("\n", "")
    assert parts[0].endswith("第一段")
    assert split_text("short", 10) == ["short"] and split_text("  ", 10) == []


def test_buttons_become_numbered_options_and_cdata_stays_safe():
    events = [ev.bot("请选择：", {"buttons": [{"title": "查订单", "payload": "/order_status"},
                                             {"title": "转人工", "payload": "/human_handoff"}]}),
              ev.bot("注意 ]]> 这里\x07"),
              {"event": ev.QUEUED, "position": 3, "eta_s": 600, "language": "zh"}]
    text, payloads = render(events, "zh")
    assert text.startswith("请选择：\n1. 查订单\n2. 转人工\n\n注意 ]]> 这里\x07\n\n")
    assert payloads == ["/order_status", "/human_handoff"]
    reply = xml.parse(xml.text_reply("oU", "gh", 1, text).encode(), 65536)
    assert reply.get("Content").startswith("请选择：\n1. 查订单") and "]]> 这里\n" in reply.get("Content")


async def test_a_numbered_answer_is_routed_by_payload(stores):
    await remember_options(stores.kv, "oU", ["/order_status", "/human_handoff"], now=1000)
    assert await chosen_payload(stores.kv, "oU", "2", now=1001, ttl_s=60) == "/human_handoff"
    assert await chosen_payload(stores.kv, "oU", "１", now=1001, ttl_s=60) == "/order_status"
    assert await chosen_payload(stores.kv, "oU", "3", now=1001, ttl_s=60) is None
    assert await chosen_payload(stores.kv, "oU", "2 please", now=1001, ttl_s=60) is None
    assert await chosen_payload(stores.kv, "oU", "1", now=2000, ttl_s=60) is None, "stale options"
    await remember_options(stores.kv, "oU", [], now=1002)
    assert await chosen_payload(stores.kv, "oU", "1", now=1003, ttl_s=60) is None


async def test_allowance_windows_quota_and_pending(stores):
    now = [1_700_000_000.0]
    settings = WeChatSettings(token="t", appid=WX_APPID, appsecret="s", encoding_aes_key=WX_AES_KEY)
    book = AllowanceBook(stores.kv, stores.trackers, settings, lambda: now[0])
    assert not await book.reserve("oU"), "no shopper message yet"
    await book.park("oU", [{"text": "older", "kind": "agent"}])
    assert await book.opened("oU", "event") == [{"text": "older", "kind": "agent"}]
    assert [await book.reserve("oU") for _ in range(4)] == [True, True, True, False], "3 after a follow"
    await book.opened("oU", "message")
    assert [await book.reserve("oU") for _ in range(6)] == [True] * 5 + [False]
    await book.opened("oU", "message")
    await book.opened("oU", "event")  # a click never shortens the 48 h allowance
    assert await book.reserve("oU", keep=3) and await book.reserve("oU", keep=3)
    assert not await book.reserve("oU", keep=3), "queue notices leave the last messages to agents"
    await book.refused("oU", 45015, [{"text": "late", "kind": "agent"}])
    meta = (await stores.trackers.get_meta("wechat:oU"))["wechat"]
    assert meta == {"quota_left": 0, "window_ends": None, "pending": 1}
    now[0] += 60
    assert await book.opened("oU", "message") == [{"text": "late", "kind": "agent"}]
    assert (await stores.trackers.get_meta("wechat:oU"))["wechat"]["quota_left"] == 5


def test_every_notice_reads_in_both_languages_and_private_notes_never_reach_the_shopper():
    for event in ({"event": ev.QUEUED, "position": 2, "eta_s": 240}, {"event": ev.AGENT_ASSIGNED, "agent": "Li"},
                  {"event": ev.HANDOFF_ENDED}, {"event": ev.HANDOFF_UNAVAILABLE, "reason": "closed"},
                  {"event": ev.TICKET_CREATED, "ticket_id": "T1"}):
        assert shopper_text(event, "zh") and shopper_text(event, "en")
    assert "2" in shopper_text({"event": ev.QUEUED, "position": 2, "eta_s": 240}, "en")
    assert shopper_text({"event": ev.AGENT_MESSAGE, "text": "on its way"}, "en") == "on its way"
    assert shopper_text({"event": ev.AGENT_NOTE, "text": "private"}, "en") is None


def test_messenger_quick_replies_within_limits_and_long_text_split():
    settings = MessengerSettings(verify_token="v", app_secret="s", page_access_token="p")
    buttons = [{"title": f"Option number {i} with a long title", "payload": f"/choose{{\"n\": {i}}}"}
               for i in range(15)]
    messages = fb_render([ev.bot("x" * 4500, {"buttons": buttons})], settings, "en")
    assert [len(m["text"]) for m in messages] == [2000, 2000, 500]
    quick = messages[-1]["quick_replies"]
    assert len(quick) == 13 and all(len(q["title"]) <= 20 for q in quick)
    assert quick[0] == {"content_type": "text", "title": "Option number 0 wit…", "payload": '/choose{"n": 0}'}
    assert all(m["metadata"] == "kefu" for m in messages)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def test_the_inbox_keeps_once_in_order_with_one_owner_per_conversation(backend, tmp_path, request):
    from uuid import uuid4

    from bot.channels.push.inbox import RECOVER_AFTER_S, Inbox
    from bot.stores import LockTimeout

    url = request.getfixturevalue("redis_url") if backend == "redis" else None
    shared = create_stores(url, tmp_path / "kefu.db", redis_prefix=f"test-{uuid4().hex[:10]}:")
    now = [1000.0]
    inbox = Inbox("x:inbox:", lambda: now[0])
    inbox.stores = shared
    try:
        for n, mid in enumerate(["m_c", "m_a", "m_b"]):  # acknowledged in this order, whatever the ids say
            now[0] = 1000.0 + n
            assert await inbox.keep("x:1", mid, {"n": n})
        assert not await inbox.keep("x:1", "m_a", {"n": 9})  # a redelivery of an unanswered one changes nothing
        assert await inbox.keep("x:10", "m_d", {"n": 0})  # a conversation whose id starts like another's
        assert await inbox.pending("x:1") == [("m_c", {"n": 0}), ("m_a", {"n": 1}), ("m_b", {"n": 2})]
        assert await inbox.left_behind() == []
        now[0] = 1000.0 + RECOVER_AFTER_S + 1
        assert await inbox.left_behind() == ["x:1"]  # x:10's entry, kept at 1002, is still fresh
        async with inbox.owning("x:1"):
            with pytest.raises(LockTimeout):
                async with inbox.owning("x:1", 0.05):
                    pass
            await inbox.done("x:1", "m_c")
        assert [key for key, _ in await inbox.pending("x:1")] == ["m_a", "m_b"]
        assert await inbox.holds("x:1", "m_a") and not await inbox.holds("x:1", "m_c")
    finally:
        await shared.close()


@pytest.mark.redis
async def test_an_answered_entry_is_cleared_across_a_redis_restart_so_no_sweep_answers_it_again(own_redis, tmp_path):
    from bot.channels.push.inbox import Inbox

    server = own_redis("--appendonly", "yes", "--appendfsync", "always", "--save", "")
    shared = create_stores(server.url, tmp_path / "unused.db", redis_prefix="inbox-restart:")
    inbox = Inbox("x:inbox:", lambda: 1000.0)
    inbox.stores = shared
    try:
        assert await inbox.keep("x:1", "m_1", {"n": 1})
        server.stop()  # the answer has just gone out; Redis restarts right then
        clearing = asyncio.create_task(inbox.done("x:1", "m_1"))
        await asyncio.sleep(1.0)
        assert not clearing.done()  # waiting for the store, not failing
        server.start()
        await asyncio.wait_for(clearing, 10)
        assert not await inbox.holds("x:1", "m_1") and await inbox.pending("x:1") == []
    finally:
        await shared.close()
