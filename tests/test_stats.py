"""The owner's statistics (handoff/stats.py) add up: parts sum to their whole, each figure counted once.

Five conversations written to a real SQLite tracker store, the way the engine and the handoff service write them:
one the bot handled alone, one handed over twice (for two reasons), one closed by an agent, one where nobody was
available and the shopper left a message, one where the shopper left the line to leave a message."""

from __future__ import annotations

import time

from bot.dialogue import events as ev
from bot.stores import create_stores
from handoff import stats
from handoff.events import event


def _at(events: list[ev.Event], start: float) -> list[ev.Event]:
    return [{**e, "timestamp": start + i} for i, e in enumerate(events)]


async def test_handoff_figures_sum_to_their_wholes(tmp_path) -> None:
    stores = create_stores(None, tmp_path / "kefu.db")
    now = time.time()
    conversations = {
        "bot-only": [ev.user("运费多少"), ev.bot("满 99 包邮")],
        "twice": [ev.user("I want a refund"), ev.handoff_requested("complaint", []), event(ev.QUEUED, position=1),
                  ev.user("cancel"), event(ev.HANDOFF_CANCELLED, by="shopper"), ev.user("a person please"),
                  ev.handoff_requested("explicit_request", []), event(ev.QUEUED, position=1),
                  event(ev.AGENT_ASSIGNED, agent="li", agent_name="小李"), event(ev.AGENT_MESSAGE, text="hi"),
                  event(ev.HANDOFF_ENDED, resolution="resolved")],
        "closed-by-agent": [ev.user("转人工"), ev.handoff_requested("explicit_request", []),
                            event(ev.AGENT_ASSIGNED, agent="li"), event(ev.HANDOFF_ENDED, resolution="not_resolved")],
        "nobody": [ev.user("asdf qwer"), ev.handoff_requested("low_intent_confidence", []),
                   event(ev.HANDOFF_UNAVAILABLE, reason="closed"), ev.user("留言：包裹没到"),
                   event(ev.TICKET_CREATED, ticket_id="T1001", text="包裹没到")],
        "left-the-line": [ev.user("human"), ev.handoff_requested("explicit_request", []),
                          event(ev.QUEUED, position=1, nobody_online=True), ev.user("/leave_message"),
                          event(ev.HANDOFF_CANCELLED, by="shopper", leave_message=True),
                          ev.bot("Please write your message", {"leave_message": "offline"}), ev.user("call me"),
                          event(ev.TICKET_CREATED, ticket_id="T1002", text="call me")],
    }
    try:
        for n, (cid, events) in enumerate(conversations.items()):
            await stores.trackers.append(cid, _at(events, now - 3600 + n * 60))
        figures = await stats.compute(stores.trackers, "Asia/Shanghai", days=1, now=now)
    finally:
        await stores.close()

    assert figures["conversations"] == 5 == figures["bot_only"] + figures["handoffs"]
    assert (figures["bot_only"], figures["handoffs"]) == (1, 4)
    assert figures["deflection_rate"] + figures["handoff_rate"] == 1
    # each handed-over conversation once, under its first reason: no reason's share exceeds the handoff rate
    assert figures["handoffs_by_reason"] == {"explicit_request": 2, "complaint": 1, "low_intent_confidence": 1}
    assert sum(figures["handoffs_by_reason"].values()) == figures["handoffs"]
    assert round(sum(figures["handoff_rate_by_reason"].values()), 4) == figures["handoff_rate"] == 0.8
    # every request has exactly one outcome: a left message is not also "unavailable" or "cancelled"
    assert figures["handoff_requests"] == 5 == sum(figures["outcomes"].values())
    assert figures["outcomes"] == {"left_message": 2, "cancelled": 1, "resolved": 1, "not_resolved": 1}


async def test_an_answer_the_shopper_rejected_counts_as_a_miss(tmp_path) -> None:
    """"That's not what I asked" after an FAQ answer: the entry is counted as a wrong answer and the question it
    answered (not the rejection) is listed with the unanswered ones, though no handoff followed."""
    stores = create_stores(None, tmp_path / "kefu.db")
    now = time.time()
    events = [ev.user("can I send it back after opening?"),
              ev.bot("Refunds reach you in 3-5 days.", {"faq_id": "refund_time", "score": 0.83}),
              ev.user("that's not what I asked"),
              ev.bot("Do you mean…?", {"clarify": ["return_policy"], "rejected_faq_id": "refund_time"}),
              ev.user("/faq{\"faq_id\": \"return_policy\"}"),
              ev.bot("Unopened items within 7 days.", {"faq_id": "return_policy", "chosen": True})]
    try:
        await stores.trackers.append("rejected", _at(events, now - 600))
        answered = [ev.user("运费多少"), ev.bot("满 99 包邮", {"faq_id": "shipping_cost"})]
        await stores.trackers.append("fine", _at(answered, now - 300))
        figures = await stats.compute(stores.trackers, "Asia/Shanghai", days=1, now=now)
    finally:
        await stores.close()
    assert figures["wrong_answers"] == 1 and figures["wrong_answers_by_entry"] == {"refund_time": 1}
    assert figures["top_unanswered"] == [{"question": "can I send it back after opening?", "count": 1}]
    assert figures["bot_only"] == 2  # a miss the bot put right itself is still a bot-only conversation


def _timed(start: float, *steps: tuple[float, ev.Event]) -> list[ev.Event]:
    """Events at `start` + their offset in seconds."""
    return [{**e, "timestamp": start + offset} for offset, e in steps]


async def test_the_reply_by_promise_per_channel(tmp_path) -> None:
    """E-mail conversations as the handoff service writes them (each wait's events carry its reply-by time), and
    a chat with no promise: per channel, the bot-only conversations, the first reply's median and 90th
    percentile, and exactly one promise outcome per promised wait — kept, broken, withdrawn or pending."""
    stores = create_stores(None, tmp_path / "kefu.db")
    now = time.time()
    start = now - 10 * 3600
    due = start + 6 * 3600
    hour = 3600.0

    def mail(text: str) -> ev.Event:
        return ev.user(text, None, "email")

    asked = ev.handoff_requested("explicit_request", [])
    waiting = event(ev.QUEUED, position=1, reply_by=due)
    conversations = {
        "email:bot-only": [(0, mail("运费多少")), (1, ev.bot("满 99 包邮"))],
        "email:kept": [(0, mail("I want a person")), (1, asked), (2, waiting),
                       (3, event(ev.AGENT_ASSIGNED, agent="li", reply_by=due)),
                       (hour, event(ev.AGENT_MESSAGE, text="Hello, Li here"))],
        "email:late-reply": [(0, mail("a person please")), (1, asked), (2, waiting),
                             (8 * hour, event(ev.AGENT_MESSAGE, text="sorry for the wait"))],
        # out of hours: a message left; the answer to its ticket is the first reply
        "email:ticket": [(0, mail("转人工")), (1, asked),
                         (2, event(ev.HANDOFF_UNAVAILABLE, reason="closed", reply_by=due)), (3, mail("留言：包裹没到")),
                         (4, event(ev.TICKET_CREATED, ticket_id="T1001", text="包裹没到", reply_by=due)),
                         (2 * hour, event(ev.AGENT_MESSAGE, text="已补发", ticket_id="T1001"))],
        "email:withdrawn": [(0, mail("human")), (1, asked), (2, waiting), (60, mail("cancel")),
                            (61, event(ev.HANDOFF_CANCELLED, by="shopper"))],
        "email:nobody-yet": [(0, mail("human")), (1, asked), (2, waiting)],  # ten hours: past its reply-by
        "email:not-due": [(9 * hour, mail("human")), (9 * hour + 1, asked),
                          (9 * hour + 2, event(ev.QUEUED, position=1, reply_by=now + 5 * hour))],
        "web:chat": [(0, ev.user("转人工", None, "widget")), (1, asked), (2, event(ev.QUEUED, position=1)),
                     (122, event(ev.AGENT_MESSAGE, text="您好"))],
    }
    try:
        for cid, steps in conversations.items():
            await stores.trackers.append(cid, _timed(start, *steps))
        figures = await stats.compute(stores.trackers, "Asia/Shanghai", days=1, now=now)
    finally:
        await stores.close()

    email, chat = figures["by_channel"]["email"], figures["by_channel"]["widget"]
    assert list(figures["by_channel"]) == ["email", "widget"]  # the busiest channel first
    assert sum(c["conversations"] for c in figures["by_channel"].values()) == figures["conversations"] == 8
    assert sum(c["bot_only"] for c in figures["by_channel"].values()) == figures["bot_only"] == 1
    assert (email["conversations"], email["bot_only"], email["handoffs"]) == (7, 1, 6)
    assert email["promise_outcomes"] == {"kept": 2, "broken": 2, "withdrawn": 1, "pending": 1}
    assert email["promised"] == 6 == sum(email["promise_outcomes"].values())
    assert email["within_promise_rate"] == 0.5  # kept / (kept + broken)
    # first replies after 1 h, 2 h and 8 h: the median is 2 h, the 90th percentile 80 % of the way to 8 h
    assert email["replied"] == 3
    assert email["first_reply_median_s"] == 2 * hour - 1
    assert email["first_reply_p90_s"] == round((2 * hour - 1) + 0.8 * ((8 * hour - 1) - (2 * hour - 1)), 2)
    assert (chat["promised"], chat["within_promise_rate"], chat["first_reply_median_s"]) == (0, None, 121)


def test_percentiles_lie_between_ranks() -> None:
    assert stats.percentile([], 0.5) is None
    assert stats.percentile([7.0], 0.9) == 7.0
    assert stats.percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert stats.percentile([10.0, 0.0, 20.0], 0.9) == 18.0
