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


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def _add_conversation(totals: _Totals, events: list[ev.Event], zone: ZoneInfo, since: float) -> None:
    users = [e for e in events if e.get("event") == "user" and float(e.get("timestamp") or 0) >= since]
    if not users:
        return
    totals.conversations += 1
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
            _add_conversation(totals, await trackers.events(row["conversation_id"]), zone, since)
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
    }
