"""A person answers WeChat and Messenger shoppers through the real agent API (log in, go online, claim, answer,
close), and what the shopper gets arrives through the fake platform APIs exactly once: the agent joined, the
agent's reply, the end notice and the rating request (numbered choices on WeChat, quick replies on Messenger),
whose answer the handoff service records as a `csat` event. Limits the agent must know about (the WeChat
allowance, the Messenger window) show in GET /api/agent/conversations/{id} `details`.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.app_keys import STORES
from bot.channels.messenger import MESSENGER
from bot.channels.wechat.outbound import render
from bot.dialogue import events as ev
from bot.notices import describe
from handoff.shopper import rating_request
from tests.channels.conftest import (
    OPENID,
    agent_login,
    fb_headers,
    fb_text,
    messenger_body,
    messenger_env,
    open_all_day,
    text_xml,
    wechat_env,
    wechat_push,
)
from tests.channels.test_wechat_webhook import open_reply, post

CID = f"wechat:{OPENID}"
RATING_ZH = render([rating_request("zh")], "zh")[0]  # the question and its choices "1. ★" … "5. ★★★★★"


async def until(check, timeout_s: float = 10.0):
    deadline = time.monotonic() + timeout_s
    while not (result := await check()):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.03)
    return result


async def api(client, method: str, path: str, headers: dict[str, str], body: dict | None = None,
              status: int | tuple[int, ...] = (200, 201)) -> dict:
    resp = await client.request(method, path, json=body, headers=headers)
    assert resp.status in ((status,) if isinstance(status, int) else status), await resp.text()
    return await resp.json()


async def csat_scores(client, cid: str) -> list[int]:
    return [e["score"] for e in await client.app[STORES].trackers.events(cid) if e["event"] == ev.CSAT]


# -- WeChat --------------------------------------------------------------------------------------------------


@pytest.fixture
async def wechat(make_client, fake_wechat):
    return await make_client(wechat_env(fake_wechat.url, WECHAT_NOTICE_GRACE_S="0.2"), handoff=open_all_day())


async def test_wechat_shopper_gets_the_agents_reply_end_notice_and_rating_request_once(wechat, fake_wechat):
    li = await agent_login(wechat)
    reply = open_reply(await (await post(wechat, *wechat_push(text_xml("转人工", "24000000000001000")))).text())
    assert "您当前排在第 1 位" in reply.get("Content")  # the place in line comes with the passive reply
    queue = await api(wechat, "GET", "/api/agent/queue", li)
    assert [(q["conversation_id"], q["channel"], q["language"]) for q in queue] == [(CID, "wechat", "zh")]

    await api(wechat, "POST", f"/api/agent/conversations/{CID}/claim", li)
    joined = describe({"event": ev.AGENT_ASSIGNED, "agent_name": "小李"}, "zh")
    await fake_wechat.wait_for(lambda: fake_wechat.texts(OPENID) == [joined])
    said = await api(wechat, "POST", f"/api/agent/conversations/{CID}/messages", li,
                     {"text": "您好，我是小李，马上帮您查。"})
    assert said["event"] == "agent_message"
    await fake_wechat.wait_for(lambda: len(fake_wechat.texts(OPENID)) == 2)
    await api(wechat, "POST", f"/api/agent/conversations/{CID}/close", li, {"resolution": "resolved"})
    ended = describe({"event": ev.HANDOFF_ENDED}, "zh")
    await fake_wechat.wait_for(lambda: len(fake_wechat.texts(OPENID)) >= 4)
    await asyncio.sleep(0.5)  # longer than the notice grace: time for a second delivery, if there were one
    assert fake_wechat.texts(OPENID) == [joined, "您好，我是小李，马上帮您查。", ended, RATING_ZH]
    assert "1. ★\n" in RATING_ZH and RATING_ZH.endswith("5. ★★★★★") and "1 分" in RATING_ZH
    assert all(c.body["touser"] == OPENID and c.body["msgtype"] == "text" for c in fake_wechat.sends())
    view = await api(wechat, "GET", f"/api/agent/conversations/{CID}", li)
    assert view["state"] == "closed" and view["details"]["wechat"]["quota_left"] == 1  # 5 per message, 4 used

    # the shopper answers "4": the number of the choice, recorded as the rating
    thanks = open_reply(await (await post(wechat, *wechat_push(text_xml("4", "24000000000001001")))).text())
    assert thanks.get("Content") == "感谢您的评价！"
    assert await csat_scores(wechat, CID) == [4]


@pytest.mark.parametrize("limit", ["45047", "allowance used up"])
async def test_wechat_quota_exhausted_shows_in_the_agents_view_and_waits_for_the_shopper(make_client, fake_wechat,
                                                                                      limit):
    env = wechat_env(fake_wechat.url, WECHAT_NOTICE_GRACE_S="0.2", WECHAT_QUOTA_PER_MESSAGE="5"
                     if limit == "45047" else "1")
    client = await make_client(env, handoff=open_all_day())
    li = await agent_login(client)
    await post(client, *wechat_push(text_xml("转人工", "24000000000002000")))
    await api(client, "POST", f"/api/agent/conversations/{CID}/claim", li)
    await fake_wechat.wait_for(lambda: len(fake_wechat.texts(OPENID)) == 1)  # "小李 joined": allowance 1 used
    if limit == "45047":
        fake_wechat.fail("send", body={"errcode": 45047, "errmsg": "out of response count limit"})
    await api(client, "POST", f"/api/agent/conversations/{CID}/messages", li, {"text": "请提供订单号"})

    async def wechat_details():
        view = await api(client, "GET", f"/api/agent/conversations/{CID}", li)
        details = view["details"]["wechat"] or {}
        return details if details.get("pending") == 1 else None

    details = await until(wechat_details)
    assert details["quota_left"] == 0 and details["window_ends"] > time.time() + 47 * 3600
    assert len(fake_wechat.sends(delivered_only=False)) == (2 if limit == "45047" else 1), "no blind retry"
    # the shopper writes again: a new allowance, and what waited goes out first, once
    await post(client, *wechat_push(text_xml("KF20240001", "24000000000002001")))
    await fake_wechat.wait_for(lambda: fake_wechat.texts(OPENID)[1:] == ["请提供订单号"])
    assert (await wechat_details()) is None
    events = await client.app[STORES].trackers.events(CID)
    assert events[-1]["event"] == "user" and events[-1]["text"] == "KF20240001"  # kept for the agent
    if limit == "allowance used up":  # the one message of the new allowance went: the end notice must wait,
        # while the rating request, answerable only until the shopper writes, is not kept at all
        await api(client, "POST", f"/api/agent/conversations/{CID}/close", li, {"resolution": "resolved"})
        details = await until(wechat_details)
        assert details["quota_left"] == 0
        await asyncio.sleep(0.5)
        assert (await api(client, "GET", f"/api/agent/conversations/{CID}", li))["details"]["wechat"]["pending"] == 1
        assert len(fake_wechat.sends()) == 2


# -- Messenger -------------------------------------------------------------------------------------------------


async def fb_post(client, psid: str, mid: str, text: str, quick_reply: str | None = None) -> None:
    item = fb_text(psid, mid, text)
    if quick_reply:
        item["message"]["quick_reply"] = {"payload": quick_reply}
    body = messenger_body([item])
    assert (await client.post("/webhooks/messenger", data=body, headers=fb_headers(body))).status == 200


@pytest.mark.parametrize("human_agent", [False, True])
async def test_messenger_shopper_gets_the_agents_reply_and_a_rating_with_quick_replies(make_client, fake_graph,
                                                                                    human_agent):
    env = messenger_env(fake_graph.url, MESSENGER_NOTICE_GRACE_S="0.2", MESSENGER_HUMAN_AGENT=str(human_agent))
    client = await make_client(env, handoff=open_all_day())
    psid, cid = "9101", "messenger:9101"
    li = await agent_login(client, "amy", "Amy")
    await fb_post(client, psid, "m_h1", "I want to talk to a human agent please")
    await fake_graph.wait_for(lambda: any("number 1 in line" in (t or "") for t in fake_graph.texts(psid)))
    asked = len(fake_graph.messages(psid))

    await api(client, "POST", f"/api/agent/conversations/{cid}/claim", li)
    await api(client, "POST", f"/api/agent/conversations/{cid}/messages", li, {"text": "Hi, Amy here. How can I help?"})
    await fake_graph.wait_for(lambda: len(fake_graph.messages(psid)) == asked + 2)
    joined, answer = (c.body for c in fake_graph.messages(psid)[asked:])
    assert joined["message"]["text"] == describe({"event": ev.AGENT_ASSIGNED, "agent_name": "Amy"}, "en")
    assert answer["message"]["text"] == "Hi, Amy here. How can I help?" and answer["recipient"] == {"id": psid}
    assert answer["messaging_type"] == "RESPONSE" and "tag" not in answer, "within 24 h: no tag, whatever the config"

    # a day later the shopper's 24 h are over: HUMAN_AGENT only when the page has that permission
    channel = client.app[MESSENGER]
    channel.clock = lambda: time.time() + 25 * 3600
    await api(client, "POST", f"/api/agent/conversations/{cid}/messages", li, {"text": "Are you still there?"})
    if human_agent:
        await fake_graph.wait_for(lambda: "Are you still there?" in fake_graph.texts(psid))
        late = fake_graph.messages(psid)[-1].body
        assert (late["messaging_type"], late["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")
    else:
        async def refused():
            view = await api(client, "GET", f"/api/agent/conversations/{cid}", li)
            return (view["details"]["messenger"] or {}).get("refused") == 1 and view["details"]["messenger"]
        details = await until(refused)
        assert details["last_refused"]["reason"] == "window closed"
        assert "Are you still there?" not in fake_graph.texts(psid)

    # the shopper comes back (a new 24 h), the agent closes: end notice and the rating request, as RESPONSE
    before_close = len(fake_graph.messages(psid))
    await fb_post(client, psid, "m_h2", "yes, still here")

    async def kept_for_the_agent():
        events = await client.app[STORES].trackers.events(cid)
        return events[-1]["event"] == "user" and events[-1]["text"] == "yes, still here"

    await until(kept_for_the_agent)
    await api(client, "POST", f"/api/agent/conversations/{cid}/close", li, {"resolution": "resolved"})
    await fake_graph.wait_for(lambda: len(fake_graph.messages(psid)) >= before_close + 2)
    await asyncio.sleep(0.5)  # time for a second delivery, if there were one
    ended, rating = (c.body for c in fake_graph.messages(psid)[before_close:])
    assert ended["message"]["text"] == describe({"event": ev.HANDOFF_ENDED}, "en")
    assert rating["message"]["text"] == rating_request("en")["text"]
    assert [(q["title"], q["payload"]) for q in rating["message"]["quick_replies"]] == [
        ("★" * n, f'/csat{{"score": {n}}}') for n in range(1, 6)]
    assert all(c.body["messaging_type"] == "RESPONSE" and "tag" not in c.body
               for c in fake_graph.messages(psid)[before_close:]), "bot text never uses HUMAN_AGENT"

    await fb_post(client, psid, "m_h3", "★★★★★", quick_reply='/csat{"score": 5}')
    await fake_graph.wait_for(lambda: "Thank you for your feedback!" in fake_graph.texts(psid))
    assert await csat_scores(client, cid) == [5]
    texts = fake_graph.texts(psid)
    assert texts.count("Hi, Amy here. How can I help?") == 1 and texts.count(rating_request("en")["text"]) == 1

