"""Two workers sharing one real Redis: each agent reply goes out exactly once, in order, and a WeChat retry
that lands on the other worker is still answered once (claims, allowance and bus are shared)."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import pytest

from bot.state import STORES
from tests.channels.conftest import (
    OPENID,
    fb_headers,
    fb_text,
    messenger_body,
    messenger_env,
    text_xml,
    wechat_env,
    wechat_push,
)

pytestmark = pytest.mark.redis


async def test_two_workers_deliver_each_agent_reply_exactly_once(make_client, fake_wechat, fake_graph, redis_url):
    prefix = f"test-{uuid4().hex[:12]}"
    env = {**wechat_env(fake_wechat.url, WECHAT_NOTICE_GRACE_S="0.2"),
           **messenger_env(fake_graph.url, MESSENGER_NOTICE_GRACE_S="0.2")}
    worker_a = await make_client(env, redis_url, prefix, name="a")
    worker_b = await make_client(env, redis_url, prefix, name="b")

    push = wechat_push(text_xml("你好", "24000000000009001"))
    first = await worker_b.post(f"/webhooks/wechat?{push[0]}", data=push[1])
    retry = await worker_a.post(f"/webhooks/wechat?{push[0]}", data=push[1])
    assert (await first.text()).startswith("<xml>") and await retry.text() == "success"
    body = messenger_body([fb_text("9001", "m_r1", "你好")])
    assert (await worker_b.post("/webhooks/messenger", data=body, headers=fb_headers(body))).status == 200
    await fake_graph.wait_for(lambda: fake_graph.messages("9001"))
    bot_replies = len(fake_graph.messages("9001"))

    console = worker_a.app[STORES].trackers  # the agent console runs on worker A
    for n in range(3):
        await console.append(f"wechat:{OPENID}", [{"event": "agent_message", "text": f"wx {n}", "agent": "li"}])
        await console.append("messenger:9001", [{"event": "agent_message", "text": f"fb {n}", "agent": "li"}])
    await fake_wechat.wait_for(lambda: len(fake_wechat.texts(OPENID)) >= 3)
    await fake_graph.wait_for(lambda: len(fake_graph.messages("9001")) >= bot_replies + 3)
    await asyncio.sleep(0.5)  # time for a second delivery, if there were one
    assert fake_wechat.texts(OPENID) == ["wx 0", "wx 1", "wx 2"]
    assert fake_graph.texts("9001")[bot_replies:] == ["fb 0", "fb 1", "fb 2"]
    for worker in (worker_a, worker_b):  # both see the same allowance
        meta = await worker.app[STORES].trackers.get_meta(f"wechat:{OPENID}")
        assert meta["wechat"]["quota_left"] == 2
    events = await worker_b.app[STORES].trackers.events(f"wechat:{OPENID}")
    assert sum(e["event"] == "user" for e in events) == 1
