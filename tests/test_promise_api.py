"""The reply-by promise through the running app (starter model, real stores, both backends): e-mail conversations
made the way the e-mail channel makes them (`Agent.handle` with `email:` ids), a REST chat beside them, and the
agent API. Out of hours an e-mail is promised from the next opening, counted in business hours; the message it
leaves keeps that time; the tickets list shows how it stands until a person answers; the statistics count it per
channel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.agent import UserMessage
from bot.app_keys import AGENT
from tests.test_handoff_api import agent, chat, events_of


async def test_an_email_out_of_hours_is_promised_in_business_hours_and_counted_when_answered(kefu_app):
    now = datetime.now(UTC)
    opening = (now + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    # open one hour a day, from `opening`: a two-hour promise takes today's hour and tomorrow's first
    client = await kefu_app(timezone="UTC", hours={"daily": f"{opening:%H}:00-{opening.hour + 1:02d}:00"},
                            reply_within={"email": {"hours": 2, "clock": "business"}})
    li = await agent(client, "li", status="online")
    due = (opening + timedelta(days=1, hours=1)).timestamp()

    told = await client.app[AGENT].handle(UserMessage("email:night", "转人工", channel="email"))
    closed = next(e for e in told if e["event"] == "handoff_unavailable")
    assert closed["reason"] == "closed" and closed["reply_by"] == due
    left = await client.app[AGENT].handle(UserMessage("email:night", "留言：包裹还没到", channel="email"))
    assert next(e for e in left if e["event"] == "ticket_created")["reply_by"] == due
    # a chat promises nothing
    await chat(client, "chat-night", "转人工")
    await chat(client, "chat-night", "留言：请回电")
    assert not any("reply_by" in e for e in await events_of(client, "chat-night"))

    tickets = await (await client.get("/api/agent/tickets", headers=li)).json()
    assert [t["conversation_id"] for t in tickets] == ["chat-night", "email:night"]  # newest first: none is urgent
    mail = tickets[1]
    assert mail["reply_by"] == due and mail["reply"]["state"] == "due" and mail["reply"]["clock"] == "business"
    assert mail["reply"]["left_s"] == 2 * 3600  # two business hours, however long the night
    assert tickets[0]["reply"] is None
    stats = await (await client.get("/api/agent/stats?days=1", headers=li)).json()
    assert stats["by_channel"]["email"]["promise_outcomes"] == {"kept": 0, "broken": 0, "withdrawn": 0,
                                                                "pending": 1}
    assert stats["reply_within"] == {"email": {"hours": 2, "clock": "business", "due_soon_minutes": 60}}

    # a person answers the ticket: the mark goes, the promise is kept
    resp = await client.patch(f"/api/agent/tickets/{mail['ticket_id']}", json={"reply": "已为您补发"}, headers=li)
    assert resp.status == 200
    tickets = await (await client.get("/api/agent/tickets", headers=li)).json()
    assert next(t for t in tickets if t["conversation_id"] == "email:night")["reply"] is None
    stats = await (await client.get("/api/agent/stats?days=1", headers=li)).json()
    email, rest = stats["by_channel"]["email"], stats["by_channel"]["rest"]
    assert email["promise_outcomes"]["kept"] == 1 and email["within_promise_rate"] == 1.0
    assert email["replied"] == 1 and email["first_reply_median_s"] > 0
    assert (email["conversations"], email["bot_only"]) == (1, 0)
    assert (rest["promised"], rest["within_promise_rate"], rest["replied"]) == (0, None, 0)
