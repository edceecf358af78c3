"""Two workers sharing one real Redis: each agent reply goes out exactly once, in order, and a WeChat retry
that lands on the other worker is still answered once (claims, allowance and bus are shared); shoppers write to
worker A while the agent works through the agent API on worker B."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import pytest

from bot.app_keys import STORES
from bot.dialogue import events as ev
from bot.notices import describe
from handoff.shopper import rating_request
from tests.channels import conftest as shop
from tests.channels.conftest import OPENID, agent_login, open_all_day

pytestmark = pytest.mark.redis


async def workers(make_client, fake_wechat, fake_graph, redis_url, handoff=None) -> list:
    """Two workers on one Redis (their own key prefix), both with WeChat and Messenger."""
    prefix = f"test-{uuid4().hex[:12]}"
    env = {**shop.wechat_env(fake_wechat.url, WECHAT_NOTICE_GRACE_S="0.2"),
           **shop.messenger_env(fake_graph.url, MESSENGER_NOTICE_GRACE_S="0.2")}
    return [await make_client(env, redis_url, prefix, name=name, handoff=handoff) for name in "ab"]


async def wechat_says(worker, text: str, msg_id: str):
    query, body = shop.wechat_push(shop.text_xml(text, msg_id))
    return await worker.post(f"/webhooks/wechat?{query}", data=body)


async def messenger_says(worker, psid: str, mid: str, text: str) -> None:
    body = shop.messenger_body([shop.fb_text(psid, mid, text)])
    assert (await worker.post("/webhooks/messenger", data=body, headers=shop.fb_headers(body))).status == 200


async def test_two_workers_deliver_each_agent_reply_exactly_once(make_client, fake_wechat, fake_graph, redis_url):
    worker_a, worker_b = await workers(make_client, fake_wechat, fake_graph, redis_url)
    first = await wechat_says(worker_b, "你好", "24000000000009001")
    retry = await wechat_says(worker_a, "你好", "24000000000009001")
    assert (await first.text()).startswith("<xml>") and await retry.text() == "success"
    await messenger_says(worker_b, "9001", "m_r1", "你好")
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


async def test_shoppers_on_worker_a_get_the_replies_of_an_agent_on_worker_b_exactly_once(make_client, fake_wechat,
                                                                                      fake_graph, redis_url):
    from tests.channels.test_handoff_channels import RATING_ZH, api
    from tests.channels.test_wechat_webhook import open_reply

    worker_a, worker_b = await workers(make_client, fake_wechat, fake_graph, redis_url, open_all_day())
    li = await agent_login(worker_b)

    reply = open_reply(await (await wechat_says(worker_a, "转人工", "24000000000009101")).text())
    assert "您当前排在第 1 位" in reply.get("Content")
    await messenger_says(worker_a, "9201", "m_r2", "I want to talk to a human agent please")
    await fake_graph.wait_for(lambda: any("in line" in (t or "") for t in fake_graph.texts("9201")))
    asked = len(fake_graph.messages("9201"))

    for cid, text in ((f"wechat:{OPENID}", "您好，我是小李。"), ("messenger:9201", "Hi, this is Li.")):
        await api(worker_b, "POST", f"/api/agent/conversations/{cid}/claim", li)
        await api(worker_b, "POST", f"/api/agent/conversations/{cid}/messages", li, {"text": text})
        await api(worker_b, "POST", f"/api/agent/conversations/{cid}/close", li, {"resolution": "resolved"})
    await fake_wechat.wait_for(lambda: RATING_ZH in fake_wechat.texts(OPENID))
    await fake_graph.wait_for(lambda: rating_request("en")["text"] in fake_graph.texts("9201"))
    await asyncio.sleep(0.5)  # time for a second delivery, if there were one

    def without_queue_updates(texts: list[str]) -> list[str]:  # the line moved when the first shopper was taken
        return [t for t in texts if "in line" not in t and "排在第" not in t]

    assert without_queue_updates(fake_wechat.texts(OPENID)) == [
        describe({"event": ev.AGENT_ASSIGNED, "agent_name": "小李"}, "zh"), "您好，我是小李。",
        describe({"event": ev.HANDOFF_ENDED}, "zh"), RATING_ZH]
    assert without_queue_updates(fake_graph.texts("9201")[asked:]) == [
        describe({"event": ev.AGENT_ASSIGNED, "agent_name": "小李"}, "en"), "Hi, this is Li.",
        describe({"event": ev.HANDOFF_ENDED}, "en"), rating_request("en")["text"]]
    # the rating, answered on worker A, is recorded once for both workers
    thanks = open_reply(await (await wechat_says(worker_a, "5", "24000000000009102")).text())
    assert thanks.get("Content") == "感谢您的评价！"
    for worker in (worker_a, worker_b):
        events = await worker.app[STORES].trackers.events(f"wechat:{OPENID}")
        assert [e["score"] for e in events if e["event"] == ev.CSAT] == [5]
