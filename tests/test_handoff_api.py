"""The human handoff over HTTP, as shoppers (REST channel) and agents (agent API) use it, on SQLite and on a real
Redis (the `kefu_app` fixture in conftest.py runs each test on both backends).

Nothing here waits without a limit: requests give up after REQUEST_TIMEOUT_S, WebSocket reads and polls have
deadlines, so a stuck server fails the test (with the place it was stuck) instead of hanging the run.
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import BaseTestServer, TestClient

from bot.app_keys import STORES
from bot.language import writes_traditional
from bot.notices import describe
from handoff.app_keys import HANDOFF

PASSWORD = "password-1"
REQUEST_TIMEOUT_S = 60  # each call answers in well under a second; this only turns a hang into a failure
WS_TIMEOUT_S = 5.0


class BoundedClient(TestClient):
    """The test client, with a total timeout on every request (aiohttp's default is five minutes)."""

    def __init__(self, server: BaseTestServer, **kwargs: Any) -> None:
        kwargs.setdefault("timeout", aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S))
        super().__init__(server, **kwargs)


@pytest.fixture
def aiohttp_client_cls() -> type[TestClient]:
    """pytest-aiohttp's hook for the client class: `kefu_app` (conftest.py) makes BoundedClients here."""
    return BoundedClient


async def chat(client: TestClient, sender: str, text: str, address: str | None = None) -> list[dict[str, Any]]:
    """A shopper's message; `address`: the shopper's own address behind the (trusted, local) test client."""
    headers = {"X-Forwarded-For": address} if address else {}
    resp = await client.post("/webhooks/rest/webhook", json={"sender": sender, "message": text}, headers=headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


def texts(replies: list[dict[str, Any]]) -> str:
    return "\n".join(r.get("text") or "" for r in replies)


async def events_of(client: TestClient, sender: str) -> list[dict[str, Any]]:
    resp = await client.get(f"/conversations/{sender}/tracker")
    assert resp.status == 200, await resp.text()
    return (await resp.json())["events"]


async def agent(client: TestClient, username: str, status: str | None = "away", **account: Any) -> dict[str, str]:
    """An agent account, logged in through the API: returns its bearer header."""
    service = client.app[HANDOFF]
    await service.agents.add(username, PASSWORD, **account)
    resp = await client.post("/api/agent/login", json={"username": username, "password": PASSWORD})
    assert resp.status == 200, await resp.text()
    headers = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    if status:
        assert (await client.put("/api/agent/status", json={"status": status}, headers=headers)).status == 200
    return headers


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 5.0) -> Any:
    """Poll check() until it gives something true; a check that itself hangs counts against the timeout."""
    try:
        async with asyncio.timeout(timeout):
            while not (result := await check()):
                await asyncio.sleep(0.03)
            return result
    except TimeoutError:
        raise AssertionError(f"condition not met within {timeout:g} s") from None


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["event"] for e in events]


async def ask_for_person(client: TestClient, sender: str, question: str = "我的包裹坏了，能退款吗") -> list[dict]:
    await chat(client, sender, question)
    return await chat(client, sender, "转人工")


# -- the whole life-cycle ----------------------------------------------------------------------------------------


async def test_queue_claim_answer_close_and_rating(kefu_app):
    client = await kefu_app(auto_assign=False)
    li = await agent(client, "li", name="小李")
    replies = await ask_for_person(client, "zh-1")
    assert "排在第 1 位" in texts(replies)
    replies = await ask_for_person(client, "zh-2")
    assert "排在第 2 位" in texts(replies)

    queue = await (await client.get("/api/agent/queue", headers=li)).json()
    assert [q["conversation_id"] for q in queue] == ["zh-1", "zh-2"]
    assert set(queue[0]) >= {"conversation_id", "position", "priority", "reason", "language", "channel", "waiting_s"}
    assert queue[0].items() >= {"position": 1, "priority": "normal", "reason": "explicit_request",
                                "language": "zh", "channel": "rest"}.items()

    view = await (await client.get("/api/agent/conversations/zh-1", headers=li)).json()
    assert view["reason"] == "explicit_request" and view["state"] == "queued"
    assert 1 <= len(view["candidates"]) <= 3 and all("score" in c for c in view["candidates"])
    assert view["details"]["channel"] == "rest" and view["details"]["language"] == "zh"

    assert (await client.post("/api/agent/conversations/zh-1/claim", headers=li)).status == 200
    # the shopper behind moves up, and is told so
    await until(lambda: _told(client, "zh-2", 1))
    mine = await (await client.get("/api/agent/conversations?mine=1", headers=li)).json()
    assert [(c["conversation_id"], c["state"], c["agent"]) for c in mine] == [("zh-1", "assigned", "li")]

    resp = await client.post("/api/agent/conversations/zh-1/messages", json={"text": "您好，我来帮您处理退款"},
                             headers=li)
    assert resp.status == 201 and (await resp.json())["event"] == "agent_message"
    assert await chat(client, "zh-1", "好的，订单号 KF20240001") == []  # for the agent, not the bot
    await client.post("/api/agent/conversations/zh-1/notes", json={"text": "VIP, be nice"}, headers=li)

    resp = await client.post("/api/agent/conversations/zh-1/close", json={"resolution": "resolved"}, headers=li)
    assert resp.status == 200
    events = await events_of(client, "zh-1")
    ended = kinds(events).index("handoff_ended")
    assert events[ended]["resolution"] == "resolved" and events[ended]["agent"] == "li"
    rating = events[ended + 1]
    assert rating["event"] == "bot" and [b["payload"] for b in rating["data"]["buttons"]] == [
        f'/csat{{"score": {n}}}' for n in range(1, 6)]
    assert "1 分" in rating["text"]
    assert any(e["event"] == "agent_message" and e["text"] == "您好，我来帮您处理退款" for e in events)
    assert any(e["event"] == "user" and "KF20240001" in e["text"] for e in events)

    replies = await chat(client, "zh-1", "五星")
    assert "感谢" in texts(replies)
    assert (await events_of(client, "zh-1"))[-2].items() >= {"event": "csat", "score": 5}.items()
    # the bot is back
    assert texts(await chat(client, "zh-1", "运费多少钱"))

    stats = await (await client.get("/api/agent/stats", headers=li)).json()
    assert stats["conversations"] == 2 and stats["handoff_rate_by_reason"] == {"explicit_request": 1.0}
    assert stats["csat_average"] == 5 and stats["average_wait_s"] is not None
    assert stats["first_response_s"] is not None and stats["average_handling_s"] is not None


async def test_a_shopper_who_writes_traditional_characters_hears_the_handoff_in_them(kefu_app):
    """Place in line, the agent joining, the end, the rating and its thanks: in the shopper's script. What the
    agent types stays as typed; a shopper writing simplified characters meanwhile reads simplified ones."""
    client = await kefu_app(auto_assign=False)
    li = await agent(client, "li", name="小李")
    await chat(client, "hk-1", "我的包裹壞了，可以退款嗎")
    queued = texts(await chat(client, "hk-1", "轉人工"))
    assert "排在第 1 位" in queued and writes_traditional([queued]), queued
    assert not writes_traditional([texts(await ask_for_person(client, "sh-1"))])

    assert (await client.post("/api/agent/conversations/hk-1/claim", headers=li)).status == 200
    joined = next(e for e in await events_of(client, "hk-1") if e["event"] == "agent_assigned")
    assert describe(joined, "zh") == "人工客服 小李 已接入，將為您服務。"
    await client.post("/api/agent/conversations/hk-1/messages", json={"text": "您好，我来帮您处理退款"}, headers=li)
    await client.post("/api/agent/conversations/hk-1/close", json={"resolution": "resolved"}, headers=li)
    events = await events_of(client, "hk-1")
    assert any(e["event"] == "agent_message" and e["text"] == "您好，我来帮您处理退款" for e in events)
    ended = kinds(events).index("handoff_ended")
    assert describe(events[ended], "zh") == "本次人工服務已結束，有其他問題可以隨時問我。"
    assert writes_traditional([events[ended + 1]["text"]]), events[ended + 1]["text"]  # please rate us
    thanks = texts(await chat(client, "hk-1", "五顆星"))
    assert (await events_of(client, "hk-1"))[-2].items() >= {"event": "csat", "score": 5}.items()
    assert writes_traditional([thanks]), thanks


async def _told(client: TestClient, sender: str, position: int) -> bool:
    queued = [e for e in await events_of(client, sender) if e["event"] == "queued"]
    return bool(queued) and queued[-1]["position"] == position


async def test_rest_shopper_reads_queue_texts_in_english(kefu_app):
    client = await kefu_app(auto_assign=False)
    await agent(client, "amy")
    await chat(client, "en-1", "talk to a human")
    replies = await chat(client, "en-2", "I want to talk to a human agent please")
    assert "You are number 2 in line, about" in texts(replies)
    assert [r.get("handoff") for r in replies if r.get("handoff")] == ["queued"]


async def test_free_agent_is_assigned_at_once_and_next_shopper_when_a_slot_frees(kefu_app):
    client = await kefu_app()
    amy = await agent(client, "amy", status="online", capacity=1, name="Amy")
    replies = await chat(client, "en-1", "talk to a human")
    assert "Amy from our team has joined" in texts(replies)
    replies = await chat(client, "en-2", "talk to a human please")
    assert "number 1 in line" in texts(replies)
    await client.post("/api/agent/conversations/en-1/close", json={}, headers=amy)
    assigned = await until(lambda: _assigned(client, "en-2"))
    assert assigned["agent"] == "amy"


async def _assigned(client: TestClient, sender: str) -> dict | None:
    return next((e for e in await events_of(client, sender) if e["event"] == "agent_assigned"), None)


async def test_routing_respects_language_groups_and_load(kefu_app):
    client = await kefu_app()
    await agent(client, "zhonly", status="online", languages=["zh"], capacity=2)
    await agent(client, "en1", status="online", languages=["en"], capacity=2)
    await agent(client, "en2", status="online", languages=["en"], capacity=2)
    await chat(client, "e1", "talk to a human")
    await chat(client, "e2", "talk to a human")
    await chat(client, "z1", "转人工")
    owners = {cid: (await _assigned(client, cid))["agent"] for cid in ("e1", "e2", "z1")}
    assert owners["z1"] == "zhonly"
    assert {owners["e1"], owners["e2"]} == {"en1", "en2"}  # least loaded first


async def test_two_agents_claim_at_once_exactly_one_wins(kefu_app):
    client = await kefu_app(auto_assign=False)
    a = await agent(client, "a")
    b = await agent(client, "b")
    await chat(client, "race", "talk to a human")
    results = await asyncio.gather(*(client.post("/api/agent/conversations/race/claim", headers=h)
                                     for h in (a, b, a, b)))
    assert sorted(r.status for r in results) == [200, 409, 409, 409]
    events = await events_of(client, "race")
    assert kinds(events).count("agent_assigned") == 1
    assert (await (await client.get("/api/agent/agents", headers=a)).json())


async def test_shopper_cancels_while_waiting(kefu_app):
    client = await kefu_app(auto_assign=False)
    li = await agent(client, "li")
    await chat(client, "c1", "转人工")
    await chat(client, "c2", "转人工")
    replies = await chat(client, "c1", "不用了")
    assert "取消" in texts(replies)
    assert "handoff_cancelled" in kinds(await events_of(client, "c1"))
    queue = await (await client.get("/api/agent/queue", headers=li)).json()
    assert [q["conversation_id"] for q in queue] == ["c2"]
    await until(lambda: _told(client, "c2", 1))
    assert texts(await chat(client, "c1", "运费多少钱"))  # back with the bot


async def test_transfer_to_agent_and_to_group(kefu_app):
    client = await kefu_app(auto_assign=False)
    a = await agent(client, "a", name="A")
    b = await agent(client, "b", name="B")
    await chat(client, "t1", "talk to a human")
    await client.post("/api/agent/conversations/t1/claim", headers=a)
    resp = await client.post("/api/agent/conversations/t1/transfer", json={"agent": "b"}, headers=a)
    assert resp.status == 200
    assigned = [e for e in await events_of(client, "t1") if e["event"] == "agent_assigned"]
    assert assigned[-1].items() >= {"agent": "b", "transferred_from": "a"}.items()
    resp = await client.post("/api/agent/conversations/t1/messages", json={"text": "hi"}, headers=a)
    assert resp.status == 403
    resp = await client.post("/api/agent/conversations/t1/transfer", json={"group": "returns"}, headers=b)
    assert resp.status == 200
    queue = await (await client.get("/api/agent/queue", headers=a)).json()
    assert queue[0]["conversation_id"] == "t1" and queue[0]["group"] == "returns"
    assert (await client.post("/api/agent/conversations/t1/transfer", json={"group": "nope"}, headers=b)).status \
        in (404, 409)
    assert (await client.post("/api/agent/conversations/t1/transfer", json={}, headers=b)).status in (400, 409)


async def test_vip_is_served_before_earlier_shoppers(kefu_app):
    client = await kefu_app(auto_assign=False)
    li = await agent(client, "li")
    await chat(client, "n1", "转人工")
    await chat(client, "v1", "你好")
    await client.app[STORES].trackers.set_meta("v1", tier="vip")
    await chat(client, "v1", "转人工")
    queue = await (await client.get("/api/agent/queue", headers=li)).json()
    assert [(q["conversation_id"], q["priority"]) for q in queue] == [("v1", "vip"), ("n1", "normal")]
    await until(lambda: _told(client, "n1", 2))


# -- nobody to take it: nobody online yet, closed, a holiday, no answer → wait, or leave a message ---------------


async def test_nobody_online_in_hours_waits_in_line_and_hears_the_wait_once_an_agent_logs_in(kefu_app):
    client = await kefu_app(auto_assign=False)
    said = texts(await chat(client, "early", "talk to a human"))
    assert "Nobody from our team is online right now" in said and "number 1 in line" in said
    assert '"leave a message"' in said and "tomorrow" not in said and "we're back" not in said
    queued = await _event(client, "early", "queued")
    assert queued["nobody_online"] is True and queued["eta_s"] is None
    assert "handoff_unavailable" not in kinds(await events_of(client, "early"))
    assert await chat(client, "early", "my parcel arrived broken") == []  # kept for the agent, no ticket

    li = await agent(client, "li")  # logs in (away: on duty, takes from the queue)
    queue = await (await client.get("/api/agent/queue", headers=li)).json()
    assert [q["conversation_id"] for q in queue] == ["early"]
    told = await until(lambda: _told_a_wait(client, "early"))
    assert told["position"] == 1 and not told["nobody_online"]
    assert describe(told, "en").startswith("You are number 1 in line, about 5 min")
    assert (await client.post("/api/agent/conversations/early/claim", headers=li)).status == 200
    assert "ticket_created" not in kinds(await events_of(client, "early"))


async def _told_a_wait(client: TestClient, sender: str) -> dict | None:
    queued = [e for e in await events_of(client, sender) if e["event"] == "queued"]
    return queued[-1] if queued and queued[-1]["eta_s"] else None


async def test_nobody_online_then_an_agent_comes_online_and_takes_the_shopper(kefu_app):
    client = await kefu_app()
    assert "没有人工客服在线" in texts(await chat(client, "first", "转人工"))
    await agent(client, "amy", status="online", name="Amy")
    assigned = await until(lambda: _assigned(client, "first"))
    assert assigned["agent"] == "amy" and "Amy" in describe(assigned, "zh")


async def test_nobody_online_shopper_leaves_a_message_instead_and_asks_about_it(kefu_app):
    client = await kefu_app()
    replies = await chat(client, "off-1", "转人工")
    assert "没有人工客服在线" in texts(replies) and "明天" not in texts(replies)
    assert "请用一条消息" in texts(await chat(client, "off-1", "留言"))
    assert "handoff_cancelled" in kinds(await events_of(client, "off-1"))  # out of the line
    replies = await chat(client, "off-1", "我的订单KF20240001还没发货，请尽快联系我")
    assert "工单号 T" in texts(replies)
    ticket = await _event(client, "off-1", "ticket_created")
    assert ticket["text"].startswith("我的订单") and ticket["ticket_id"] in texts(replies)
    assert "待处理" in texts(await chat(client, "off-1", "工单进度"))

    li = await agent(client, "li")
    assert await (await client.get("/api/agent/queue", headers=li)).json() == []
    tickets = await (await client.get("/api/agent/tickets?status=pending", headers=li)).json()
    assert [(t["ticket_id"], t["reason"]) for t in tickets] == [(ticket["ticket_id"], "offline")]
    view = await client.get("/api/agent/conversations/off-1", headers=li)  # tickets are everyone's work
    assert view.status == 200
    resp = await client.patch(f"/api/agent/tickets/{ticket['ticket_id']}", json={"reply": "已为您加急发货"},
                              headers=li)
    assert resp.status == 200 and (await resp.json())["status"] == "in_progress"
    stored = await events_of(client, "off-1")
    assert any(e["event"] == "agent_message" and e["text"] == "已为您加急发货" for e in stored)
    assert "处理中" in texts(await chat(client, "off-1", "/ticket_status"))
    assert (await client.patch("/api/agent/tickets/T1", json={"status": "resolved"}, headers=li)).status == 404
    assert (await client.patch(f"/api/agent/tickets/{ticket['ticket_id']}", json={"status": "done"},
                               headers=li)).status == 400


async def test_shoppers_leaving_messages_at_once_each_get_their_own_ticket_number(kefu_app):
    client = await kefu_app()
    shoppers = [f"busy-{i}" for i in range(30)]  # each at its own address (one client's limit is 20 at once)
    address = {s: f"198.51.100.{i}" for i, s in enumerate(shoppers)}
    await asyncio.gather(*(chat(client, s, "talk to a human", address[s]) for s in shoppers))  # nobody online
    replies = await asyncio.gather(*(chat(client, s, f"leave a message: please call {s} back", address[s])
                                     for s in shoppers))

    numbers = [re.findall(r"T\d{4,}", texts(r)) for r in replies]
    assert sorted(n for found in numbers for n in found) == [f"T{n}" for n in range(1001, 1031)]
    li = await agent(client, "li")
    tickets = await (await client.get("/api/agent/tickets", headers=li)).json()
    assert {t["ticket_id"]: t["text"] for t in tickets} == {
        found[0]: f"please call {s} back" for s, found in zip(shoppers, numbers, strict=True)}


async def test_a_message_that_cannot_be_made_a_ticket_is_refused_clearly_and_can_be_sent_again(kefu_app, monkeypatch):
    client = await kefu_app()
    await chat(client, "unlucky", "talk to a human")
    before = await events_of(client, "unlucky")

    async def store_down(counter: str) -> int:
        raise ConnectionError("the store is unreachable")

    kv = client.app[STORES].kv
    with monkeypatch.context() as patch:
        patch.setattr(kv, "incr", store_down)
        resp = await client.post("/webhooks/rest/webhook",
                                 json={"sender": "unlucky", "message": "leave a message: call me back"})
    assert resp.status == 503  # never a 200 that reads like an answer while the ticket is lost
    assert "could not be saved as a ticket" in (await resp.json())["error"]
    assert await events_of(client, "unlucky") == before  # the failed turn left nothing half-done

    replies = await chat(client, "unlucky", "leave a message: call me back")
    assert "T1001" in texts(replies)


async def test_outside_business_hours_says_when_we_are_back_and_answers_other_questions(kefu_app):
    now = datetime.now(UTC)
    opening = (now + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    client = await kefu_app(timezone="UTC", hours={"daily": f"{opening:%H}:00-{opening.hour + 1:02d}:00"})
    await agent(client, "li", status="online")
    replies = await chat(client, "night", "talk to a human")
    event = await _event(client, "night", "handoff_unavailable")
    assert event["reason"] == "closed" and event["timezone"] == "UTC"
    assert datetime.fromisoformat(event["next_open"]) == opening
    assert f"{opening:%H}:00 (UTC)" in texts(replies) and "leave a message" in texts(replies).lower()
    assert "connecting you" not in texts(replies).lower()

    # a question the bot can answer is answered, not made a ticket
    replies = await chat(client, "night", "how many days does delivery take?")
    assert "ticket" not in texts(replies).lower()
    after = (await events_of(client, "night"))[kinds(await events_of(client, "night")).index("handoff_unavailable"):]
    assert any(e["event"] == "action" and e["name"] == "utter_faq" for e in after)
    assert "ticket_created" not in kinds(after)
    # only an explicit message for the team becomes one (here with the message given at once)
    replies = await chat(client, "night", "leave a message: please call me back about KF20240001")
    ticket = await _event(client, "night", "ticket_created")
    assert ticket["text"] == "please call me back about KF20240001" and ticket["ticket_id"] in texts(replies)

    await chat(client, "night-2", "talk to a human")
    replies = await chat(client, "night-2", "cancel")
    assert "no message left" in texts(replies).lower()
    assert "ticket_created" not in kinds(await events_of(client, "night-2"))


async def test_on_a_closed_date_the_team_is_back_the_next_day(kefu_app):
    today = datetime.now(UTC).date()
    client = await kefu_app(timezone="UTC", hours={"daily": "24h"}, closed_dates=[today])
    await agent(client, "li", status="online")
    replies = await chat(client, "holiday", "转人工")
    event = await _event(client, "holiday", "handoff_unavailable")
    assert event["reason"] == "closed"
    assert datetime.fromisoformat(event["next_open"]) == datetime.combine(today + timedelta(days=1),
                                                                           datetime.min.time(), UTC)
    assert "明天 00:00（UTC）恢复服务" in texts(replies) and "留言" in texts(replies)
    assert "请用一条消息" in texts(await chat(client, "holiday", "我要留言"))
    assert "工单号 T" in texts(await chat(client, "holiday", "发票抬头写错了，请帮我重开"))


async def test_nobody_answers_in_time_offers_a_ticket(kefu_app):
    client = await kefu_app(no_answer_timeout_s=0.3)
    await agent(client, "li")  # away: on duty but not taking chats
    await chat(client, "slow", "talk to a human")
    timeout = await until(lambda: _event(client, "slow", "handoff_unavailable"))
    assert timeout["reason"] == "timeout" and timeout["next_open"] is None
    assert "leave a message" in describe(timeout, "en")
    assert "write your message" in texts(await chat(client, "slow", "/leave_message"))
    assert "ticket" in texts(await chat(client, "slow", "Please call me back about my refund"))


async def _event(client: TestClient, sender: str, kind: str) -> dict | None:
    return next((e for e in await events_of(client, sender) if e["event"] == kind), None)


# -- safety: authentication, permissions, bad input --------------------------------------------------------------


async def test_nothing_works_without_login(kefu_app):
    client = await kefu_app()
    await chat(client, "s1", "转人工")
    checked = 0
    for resource in client.app.router.resources():
        path = resource.canonical
        if not path.startswith(("/api/agent", "/console")) or path in ("/api/agent/login", "/console/login"):
            continue
        url = path.replace("{cid}", "s1").replace("{ticket_id}", "T1001").replace("{asset}", "app.js").replace(
            "{entry_id}", "shipping_time")
        for route in resource:
            if route.method == "HEAD":
                continue
            resp = await client.request(route.method, url, json={}, allow_redirects=False)
            if path == "/console":
                assert resp.status == 302 and resp.headers["Location"] == "/console/login"
            else:
                assert resp.status == 401, (route.method, url, resp.status)
                assert "error" in await resp.json()
            checked += 1
    assert checked >= 18
    bad = {"Authorization": "Bearer not-a-token"}
    assert (await client.get("/api/agent/queue", headers=bad)).status == 401
    assert (await client.post("/api/agent/login", json={"username": "li", "password": "x"})).status == 401
    page = await client.get("/console/login")
    assert page.status == 200 and "<form" in await page.text()


async def test_permissions_and_conflicts(kefu_app):
    client = await kefu_app(auto_assign=False)
    a = await agent(client, "a")
    b = await agent(client, "b")
    boss = await agent(client, "boss", role="admin")
    await chat(client, "p1", "转人工")
    assert (await client.get("/api/agent/conversations/nope", headers=a)).status == 404
    assert (await client.post("/api/agent/conversations/nope/claim", headers=a)).status == 404
    resp = await client.post("/api/agent/conversations/p1/messages", json={"text": "hi"}, headers=a)
    assert resp.status == 409  # claim first
    await client.post("/api/agent/conversations/p1/claim", headers=a)
    assert (await client.post("/api/agent/conversations/p1/claim", headers=b)).status == 409
    assert (await client.get("/api/agent/conversations/p1", headers=b)).status == 403
    assert (await client.post("/api/agent/conversations/p1/messages", json={"text": "x"}, headers=b)).status == 403
    assert (await client.post("/api/agent/conversations/p1/close", json={}, headers=b)).status == 403
    assert (await client.get("/api/agent/conversations/p1", headers=boss)).status == 200
    for body in ({}, {"text": ""}, {"text": 5}, {"text": "x" * 5001}):
        assert (await client.post("/api/agent/conversations/p1/messages", json=body, headers=a)).status == 400
    assert (await client.post("/api/agent/conversations/p1/close", json={"resolution": "meh"},
                              headers=a)).status == 400
    assert (await client.put("/api/agent/status", json={"status": "sleeping"}, headers=a)).status == 400
    assert (await client.post("/api/agent/conversations/p1/close", json={}, headers=a)).status == 200
    resp = await client.post("/api/agent/conversations/p1/messages", json={"text": "still there?"}, headers=a)
    assert resp.status == 409 and "closed" in (await resp.json())["error"]
    assert (await client.get("/api/agent/conversations/p1", headers=a)).status == 200  # handled it before
    assert (await client.get("/api/agent/conversations/p1", headers=b)).status == 403


async def test_console_login_sets_a_strict_http_only_cookie(kefu_app):
    client = await kefu_app()
    await client.app[HANDOFF].agents.add("li", PASSWORD)
    resp = await client.post("/console/login", data={"username": "li", "password": "wrong-one"},
                             allow_redirects=False)
    assert resp.status == 401 and "role=\"alert\"" in await resp.text()
    resp = await client.post("/console/login", data={"username": "li", "password": PASSWORD}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/console"
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    page = await client.get("/console", allow_redirects=False)
    assert page.status == 200 and "Content-Security-Policy" in page.headers
    assert (await client.get("/console/app.js")).status == 200
    assert (await client.get("/api/agent/me")).status == 200
    # a change driven from another site with the cookie is refused
    resp = await client.put("/api/agent/status", json={"status": "online"}, headers={"Origin": "https://evil.example"})
    assert resp.status == 403
    assert (await client.post("/api/agent/logout")).status == 200
    assert (await client.get("/api/agent/me")).status == 401


# -- live: the WebSocket ---------------------------------------------------------------------------------------


async def _next(ws, kind: str, match: Callable[[dict], bool] = lambda m: True,
                timeout: float = WS_TIMEOUT_S) -> dict:
    """The next console message of this kind (and match), skipping others; fails after timeout seconds."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = await ws.receive_json()
                if message.get("type") == kind and match(message):
                    return message
    except TimeoutError:
        raise AssertionError(f"no {kind!r} message on the console WebSocket within {timeout:g} s") from None


async def test_console_websocket_shows_queue_messages_and_typing(kefu_app):
    client = await kefu_app(auto_assign=False)
    li = await agent(client, "li")
    async with client.ws_connect("/api/agent/ws", headers=li) as ws:
        assert (await ws.receive_json(timeout=WS_TIMEOUT_S))["type"] == "hello"
        await chat(client, "live", "转人工")
        queued = await _next(ws, "event", lambda m: m["event"]["event"] == "queued")
        assert queued["conversation_id"] == "live"
        await client.app[STORES].bus.publish("live", {"event": "typing", "role": "user", "on": True})
        typing = await _next(ws, "typing")
        assert typing["event"]["role"] == "user"
        await chat(client, "live", "<script>alert(1)</script>")
        user = await _next(ws, "event", lambda m: m["event"]["event"] == "user")
        assert user["event"]["text"] == "<script>alert(1)</script>"
        await client.post("/api/agent/conversations/live/claim", headers=li)
        async with client.app[STORES].bus.subscribe() as bus:
            await ws.send_json({"type": "typing", "conversation_id": "live", "on": True})
            while True:
                item = await bus.get(WS_TIMEOUT_S)
                assert item is not None, "the agent's typing never reached the bus"
                if item[1]["event"] == "typing":
                    assert item[1]["role"] == "agent" and item[1]["on"] is True
                    break
    assert "typing" not in kinds(await events_of(client, "live"))  # ephemeral, never stored


# -- restarts and several workers ------------------------------------------------------------------------------


async def test_restart_loses_no_queue_entry_message_or_ticket(kefu_app):
    client = await kefu_app(auto_assign=False)
    li = await agent(client, "li")
    await chat(client, "r1", "转人工")
    await chat(client, "r2", "转人工")
    await client.post("/api/agent/conversations/r1/claim", headers=li)
    await client.post("/api/agent/conversations/r1/messages", json={"text": "马上处理"}, headers=li)
    await client.app[HANDOFF].tickets.create("r3", "call me", "en", "rest", "offline")
    await client.close()

    again = await kefu_app(auto_assign=False)
    resp = await again.post("/api/agent/login", json={"username": "li", "password": PASSWORD})
    li = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    queue = await (await again.get("/api/agent/queue", headers=li)).json()
    assert [q["conversation_id"] for q in queue] == ["r2"]
    mine = await (await again.get("/api/agent/conversations?mine=1", headers=li)).json()
    assert [c["conversation_id"] for c in mine] == ["r1"]
    assert any(e.get("text") == "马上处理" for e in await events_of(again, "r1"))
    assert len(await (await again.get("/api/agent/tickets", headers=li)).json()) == 1
    assert (await again.post("/api/agent/conversations/r1/close", json={}, headers=li)).status == 200


@pytest.mark.redis
@pytest.mark.parametrize("handoff_backend", ["redis"], indirect=True)  # workers share state through Redis
async def test_two_workers_share_one_queue_and_console(kefu_app):
    worker_a = await kefu_app(auto_assign=False)
    worker_b = await kefu_app(auto_assign=False)
    li = await agent(worker_b, "li")
    async with worker_b.ws_connect("/api/agent/ws", headers=li) as ws:
        assert (await ws.receive_json(timeout=WS_TIMEOUT_S))["type"] == "hello"
        assert "排在第 1 位" in texts(await chat(worker_a, "w1", "转人工"))
        await _next(ws, "event", lambda m: m["event"]["event"] == "queued" and m["conversation_id"] == "w1")
        queue = await (await worker_b.get("/api/agent/queue", headers=li)).json()
        assert [q["conversation_id"] for q in queue] == ["w1"]
        claims = await asyncio.gather(worker_a.post("/api/agent/conversations/w1/claim", headers=li),
                                      worker_b.post("/api/agent/conversations/w1/claim", headers=li))
        assert sorted(r.status for r in claims) == [200, 409]
        assert await chat(worker_a, "w1", "在吗？") == []
        user = await _next(ws, "event", lambda m: m["event"]["event"] == "user")
        assert user["event"]["text"] == "在吗？"
    await worker_b.post("/api/agent/conversations/w1/messages", json={"text": "在的"}, headers=li)
    assert any(e["event"] == "agent_message" for e in await events_of(worker_a, "w1"))



async def login_from(client: TestClient, address: str, password: str, username: str = "li") -> aiohttp.ClientResponse:
    """POST /api/agent/login from another client address (any 127.x.y.z reaches the test server)."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        resp = await session.post(client.make_url("/api/agent/login"),
                                  json={"username": username, "password": password})
        await resp.read()
        return resp


async def test_parallel_wrong_passwords_lock_out_only_the_guessing_address(kefu_app):
    """200 guesses at once: 10 are checked, the rest refused; the right password from that address waits,
    while the real agent at another address logs in."""
    client = await kefu_app()
    await client.app[HANDOFF].agents.add("li", PASSWORD)
    guesses = await asyncio.gather(*(client.post("/api/agent/login", json={"username": "li", "password": f"x{i}"})
                                     for i in range(200)))
    statuses = sorted(r.status for r in guesses)
    assert statuses.count(401) == 10 and statuses.count(429) == 190
    resp = await client.post("/api/agent/login", json={"username": "li", "password": PASSWORD})
    assert resp.status == 429 and "try again" in (await resp.json())["error"]
    assert (await login_from(client, "127.0.0.2", PASSWORD)).status == 200


async def test_guessing_from_many_addresses_is_slowed_but_the_agent_still_logs_in(kefu_app):
    client = await kefu_app()
    await client.app[HANDOFF].agents.add("li", PASSWORD)
    assert (await login_from(client, "127.0.0.200", PASSWORD)).status == 200  # where the agent works
    wrong = [login_from(client, f"127.0.1.{n}", f"guess-{n}-{i}") for n in range(1, 12) for i in range(10)]
    assert {r.status for r in await asyncio.gather(*wrong)} <= {401, 429}  # 110 tries: past the ceiling
    # a new address now waits its turn: about one password check a second for the whole account
    paced = await asyncio.gather(*(login_from(client, "127.0.2.1", f"more-{i}") for i in range(5)))
    assert sum(r.status == 429 for r in paced) >= 3
    # the agent's usual address is not paced; at a new one, the agent gets in after a short wait
    assert (await login_from(client, "127.0.0.200", PASSWORD)).status == 200
    await asyncio.sleep(1.1)
    assert (await login_from(client, "127.0.3.1", PASSWORD)).status == 200


async def test_changing_the_password_with_kefu_agents_passwd_ends_open_sessions(kefu_app, handoff_backend,
                                                                                monkeypatch, tmp_path):
    from bot.cli import main

    client = await kefu_app()
    await client.app[HANDOFF].agents.add("li", PASSWORD)
    resp = await client.post("/console/login", data={"username": "li", "password": PASSWORD}, allow_redirects=False)
    assert resp.status == 303
    await client.app[HANDOFF].agents.add("bo", PASSWORD)
    bearer = {"Authorization": f"Bearer {await client.app[HANDOFF].agents.open_session('bo')}"}
    assert (await (await client.get("/api/agent/me")).json())["agent"]["username"] == "li"  # li's cookie
    # the operator changes li's password, in the same store the server uses
    project = tmp_path / "cli"
    project.mkdir()
    if handoff_backend["redis_url"]:
        project.joinpath("endpoints.yml").write_text(
            f"tracker_store:\n  type: redis\n  url: {handoff_backend['redis_url']}\n"
            f"  key_prefix: {handoff_backend['prefix']}\n", encoding="utf-8")
    else:
        project.joinpath("kefu.db").symlink_to(handoff_backend["db_path"])
    monkeypatch.chdir(project)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO("a-new-password-2\n"))
    assert await asyncio.to_thread(main, ["agents", "passwd", "li", "--password-stdin"]) == 0

    resp = await client.get("/api/agent/me")  # the old session cookie
    assert resp.status == 401
    assert (await client.get("/console", allow_redirects=False)).headers["Location"] == "/console/login"
    assert (await client.get("/api/agent/me", headers=bearer)).status == 200  # other agents stay logged in
    assert (await client.post("/api/agent/login", json={"username": "li", "password": PASSWORD})).status == 401
    resp = await client.post("/api/agent/login", json={"username": "li", "password": "a-new-password-2"})
    assert resp.status == 200


async def test_a_lost_handoff_is_told_not_kept_waiting(kefu_app):
    client = await kefu_app(auto_assign=False)
    await agent(client, "li")
    await chat(client, "lost", "你好")
    # the queue failed during the request: handoff_requested got no answer, there is no record
    await client.app[STORES].trackers.append("lost", [
        {"event": "handoff_requested", "reason": "explicit_request", "candidates": [], "language": "zh"}])
    assert "再说一次" in texts(await chat(client, "lost", "还在吗"))
    assert texts(await chat(client, "lost", "运费多少钱"))  # the bot answers again


async def test_a_handoff_the_queue_could_not_take_is_ended_and_said_at_once(kefu_app):
    client = await kefu_app(auto_assign=False)
    await agent(client, "li")
    await chat(client, "down", "运费多少钱")
    queue = client.app[HANDOFF].queue
    working = queue.enqueue

    async def queue_down(record):
        raise ConnectionError("the queue's store went away")

    queue.enqueue = queue_down
    told = texts(await chat(client, "down", "转人工"))
    assert "再说一次" in told  # not left waiting for nobody
    events = await client.app[STORES].trackers.events("down")
    assert [e["event"] for e in events if e["event"].startswith("handoff")][-2:] == [
        "handoff_requested", "handoff_cancelled"]
    queue.enqueue = working
    await chat(client, "down", "转人工")  # asking again, with the queue back, puts the shopper in line
    [waiting] = await client.app[HANDOFF].records.waiting()
    assert waiting.conversation_id == "down"
