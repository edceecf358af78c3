"""Statistics for the shop owner, computed from conversation events (the tracker store is the only source).

Each figure is defined once, and parts add up to their whole (the console's help text says the same):

- conversations: those with a shopper message in the period = bot only + handed over.
- deflection rate = bot only / conversations; handoff rate = handed over / conversations (they sum to 1).
- handoffs by reason: each handed-over conversation once, under the reason of its first handoff (they sum to
  handed over; their rates sum to the handoff rate).
- handoff requests: every time the bot handed over (a conversation may hand over more than once); each request
  has exactly one outcome (they sum to the requests): the agent's resolution when an agent closed it,
  `cancelled` (the shopper stopped waiting), `left_message` (a message left instead of waiting, or because
  nobody was available), `unavailable_<reason>` (nobody available and no message left), `open` (still waiting or with
  an agent).
- Times, the usual help-desk meaning: wait = requested → agent assigned, first response = requested → first
  agent message, handling = assigned → ended.
- Per channel (the conversation's channel): conversations = bot only + handed over, as above. A wait for a person
  begins with a handoff request (or with a message left after a person had answered) and ends at a person's
  first reply (an agent's message, or an answer to the ticket): first reply = begin → that reply, in wall-clock
  time, as median and 90th percentile (linear between ranks). A wait whose channel promised a reply-by time
  (handoff/promise.py) has exactly one promise outcome (they sum to the promised waits): kept (first reply by
  the reply-by time), broken (a later reply, or none by then), withdrawn (the shopper stopped waiting — or nobody
  was available and no message was left, or an agent closed it — before the reply-by time, with no reply) or
  pending (no reply yet, not yet due). Answered within the promise = kept / (kept + broken).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.dialogue import events as ev
from bot.stores import TrackerStore
from bot.stores.base import first_channel
from handoff.promise import CARRIERS

MAX_CONVERSATIONS = 5000
UNANSWERED_REASONS = {"low_intent_confidence", "small_margin", "low_faq_score", "small_faq_margin",
                      "repeated_fallback"}
_NORMALISE = re.compile(r"[\s\W_]+")


@dataclass
class _Totals:
    conversations: int = 0
    bot_only: int = 0
    handoffs: Counter[str] = field(default_factory=Counter)  # handed-over conversations by their first reason
    requests: int = 0
    waits: list[float] = field(default_factory=list)
    first_responses: list[float] = field(default_factory=list)
    handling: list[float] = field(default_factory=list)
    csat: list[int] = field(default_factory=list)
    hours: list[int] = field(default_factory=lambda: [0] * 24)
    unanswered: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    wrong_answers: Counter[str] = field(default_factory=Counter)  # FAQ entries the shopper said missed the question
    channels: dict[str, _Channel] = field(default_factory=dict)


@dataclass
class _Channel:
    conversations: int = 0
    bot_only: int = 0
    waits: int = 0
    first_replies: list[float] = field(default_factory=list)
    promise: Counter[str] = field(default_factory=Counter)  # kept | broken | withdrawn | pending


@dataclass
class _Wait:
    """One wait for a person: from its start to a person's first reply."""

    start: float
    reply_by: float | None = None
    replied_at: float | None = None
    given_up_at: float | None = None  # ended with no reply and no message left

    def promise(self, now: float) -> str | None:
        if self.reply_by is None:
            return None
        if self.replied_at is not None:
            return "kept" if self.replied_at <= self.reply_by else "broken"
        if self.given_up_at is not None and self.given_up_at < self.reply_by:
            return "withdrawn"
        return "broken" if now >= self.reply_by else "pending"


def _waits(events: list[ev.Event]) -> list[_Wait]:
    waits: list[_Wait] = []
    for event in events:
        kind, at = event.get("event"), float(event.get("timestamp") or 0)
        if kind == ev.HANDOFF_REQUESTED or (kind == ev.TICKET_CREATED
                                             and (not waits or waits[-1].replied_at is not None)):
            waits.append(_Wait(at))
        if not waits:
            continue
        wait = waits[-1]
        if kind in CARRIERS and event.get("reply_by") is not None and wait.reply_by is None:
            wait.reply_by = float(event["reply_by"])
        if wait.replied_at is not None:
            continue
        if kind == ev.AGENT_MESSAGE:
            wait.replied_at = at
        elif kind in (ev.HANDOFF_ENDED, ev.HANDOFF_CANCELLED, ev.HANDOFF_UNAVAILABLE):
            wait.given_up_at = wait.given_up_at or at
        elif kind == ev.TICKET_CREATED:
            wait.given_up_at = None  # a message left: still waiting for a person
    return waits


def _add_channel(totals: _Totals, channel: str, events: list[ev.Event], now: float) -> None:
    figures = totals.channels.setdefault(channel, _Channel())
    figures.conversations += 1
    waits = _waits(events)
    figures.bot_only += not any(e.get("event") == ev.HANDOFF_REQUESTED for e in events)
    figures.waits += len(waits)
    figures.first_replies += [w.replied_at - w.start for w in waits if w.replied_at is not None]
    figures.promise.update(outcome for w in waits if (outcome := w.promise(now)) is not None)


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def percentile(values: list[float], share: float) -> float | None:
    """The value below which `share` of the values lie, linear between ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = share * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (rank - low), 2)


def _channel_figures(figures: _Channel) -> dict[str, Any]:
    kept, broken = figures.promise["kept"], figures.promise["broken"]
    return {
        "conversations": figures.conversations,
        "bot_only": figures.bot_only,
        "handoffs": figures.conversations - figures.bot_only,
        "waits": figures.waits,
        "replied": len(figures.first_replies),
        "first_reply_median_s": percentile(figures.first_replies, 0.5),
        "first_reply_p90_s": percentile(figures.first_replies, 0.9),
        "promised": sum(figures.promise.values()),
        "promise_outcomes": {k: figures.promise[k] for k in ("kept", "broken", "withdrawn", "pending")},
        "within_promise_rate": round(kept / (kept + broken), 4) if kept + broken else None,
    }


def _add_conversation(totals: _Totals, events: list[ev.Event], zone: ZoneInfo, since: float,
                      channel: str = "unknown", now: float = 0.0) -> None:
    users = [e for e in events if e.get("event") == "user" and float(e.get("timestamp") or 0) >= since]
    if not users:
        return
    totals.conversations += 1
    _add_channel(totals, channel, events, now)
    for event in users:
        totals.hours[datetime.fromtimestamp(float(event["timestamp"]), zone).hour] += 1
    requested_at: float | None = None
    assigned_at: float | None = None
    answered = False
    outcomes: list[str] = []  # one per handoff request, the last one still open to change
    for i, event in enumerate(events):
        kind, at = event.get("event"), float(event.get("timestamp") or 0)
        if kind == ev.HANDOFF_REQUESTED:
            if not outcomes:
                totals.handoffs[str(event.get("reason") or "unknown")] += 1
            outcomes.append("open")
            requested_at, assigned_at, answered = at, None, False
            if event.get("reason") in UNANSWERED_REASONS:
                _unanswered(totals, events[:i])
        elif kind == ev.AGENT_ASSIGNED and requested_at is not None and assigned_at is None:
            assigned_at = at
            totals.waits.append(at - requested_at)
        elif kind == ev.AGENT_MESSAGE and requested_at is not None and not answered:
            answered = True
            totals.first_responses.append(at - requested_at)
        elif kind == ev.HANDOFF_ENDED and assigned_at is not None:
            totals.handling.append(at - assigned_at)
            _settle(outcomes, str(event.get("resolution") or "resolved"))
            requested_at = assigned_at = None
        elif kind == ev.HANDOFF_CANCELLED:
            _settle(outcomes, "cancelled")  # "left_message" once the message is left
            requested_at = assigned_at = None
        elif kind == ev.HANDOFF_UNAVAILABLE:
            _settle(outcomes, f"unavailable_{event.get('reason') or 'offline'}")
            requested_at = assigned_at = None
        elif kind == ev.TICKET_CREATED and outcomes and outcomes[-1].startswith(("unavailable_", "cancelled")):
            outcomes[-1] = "left_message"  # instead of waiting, or because nobody was there
        elif kind == ev.CSAT and isinstance(event.get("score"), int | float):
            totals.csat.append(int(event["score"]))
        elif kind == "action" and event.get("name") == "action_default_fallback":
            _unanswered(totals, events[:i])
        elif kind == "bot" and (event.get("data") or {}).get("rejected_faq_id"):
            _wrong_answer(totals, events[:i], str(event["data"]["rejected_faq_id"]))
    totals.requests += len(outcomes)
    totals.outcomes.update(outcomes)
    if not outcomes:
        totals.bot_only += 1


def _settle(outcomes: list[str], outcome: str) -> None:
    """The outcome of the latest request, if it has none yet."""
    if outcomes and outcomes[-1] == "open":
        outcomes[-1] = outcome


def _unanswered(totals: _Totals, before: list[ev.Event]) -> None:
    """The shopper's last question before the bot gave up, counted once per wording."""
    for event in reversed(before):
        if event.get("event") == "user":
            question = str(event.get("text") or "")
            if question.startswith("/"):
                return
            key = _NORMALISE.sub(" ", question.lower()).strip()
            if key:
                totals.unanswered[key] += 1
                totals.examples.setdefault(key, question)
            return


def _wrong_answer(totals: _Totals, before: list[ev.Event], faq_id: str) -> None:
    """An answer the shopper said was not what they asked is a miss: its entry is counted, and the question it
    answered joins the unanswered ones (not "that's not what I asked", which came after it)."""
    totals.wrong_answers[faq_id] += 1
    for i in range(len(before) - 1, -1, -1):
        if before[i].get("event") == "bot" and (before[i].get("data") or {}).get("faq_id") == faq_id:
            _unanswered(totals, before[:i])
            return


async def compute(trackers: TrackerStore, timezone: str, days: float = 30, now: float | None = None,
                  tickets: dict[str, int] | None = None) -> dict[str, Any]:
    """Figures over the conversations active in the last `days` days."""
    now = time.time() if now is None else now
    since = now - days * 86400
    zone = ZoneInfo(timezone)
    totals = _Totals()
    offset, page = 0, 200
    while offset < MAX_CONVERSATIONS:
        rows = await trackers.conversations(limit=page, offset=offset)
        recent = [r for r in rows if float(r["updated_at"]) >= since]
        for row in recent:
            events = await trackers.events(row["conversation_id"])
            channel = str(row.get("channel") or first_channel(events) or "unknown")
            _add_conversation(totals, events, zone, since, channel, now)
        if len(rows) < page or len(recent) < len(rows):
            break
        offset += page
    handed = totals.conversations - totals.bot_only
    busiest = sorted(range(24), key=lambda h: -totals.hours[h])[:3]
    return {
        "period_days": days,
        "timezone": timezone,
        "conversations": totals.conversations,
        "bot_only": totals.bot_only,
        "deflection_rate": round(totals.bot_only / totals.conversations, 4) if totals.conversations else None,
        "handoffs": handed,
        "handoff_rate": round(handed / totals.conversations, 4) if totals.conversations else None,
        "handoff_rate_by_reason": {reason: round(n / totals.conversations, 4)
                                   for reason, n in totals.handoffs.most_common()},
        "handoffs_by_reason": dict(totals.handoffs.most_common()),
        "handoff_requests": totals.requests,
        "outcomes": dict(totals.outcomes.most_common()),
        "first_response_s": _mean(totals.first_responses),
        "average_wait_s": _mean(totals.waits),
        "average_handling_s": _mean(totals.handling),
        "csat_average": _mean([float(s) for s in totals.csat]),
        "csat_count": len(totals.csat),
        "messages_by_hour": totals.hours,
        "busiest_hours": [h for h in busiest if totals.hours[h] > 0],
        "wrong_answers": sum(totals.wrong_answers.values()),
        "wrong_answers_by_entry": dict(totals.wrong_answers.most_common()),
        "top_unanswered": [{"question": totals.examples[key], "count": n}
                           for key, n in totals.unanswered.most_common(10)],
        "tickets": tickets or {},
        "by_channel": {name: _channel_figures(figures) for name, figures in
                       sorted(totals.channels.items(), key=lambda item: (-item[1].conversations, item[0]))},
    }
