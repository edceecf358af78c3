"""The handoff's events, built in one place (their fields are what channels, the console and stats read;
docs/design.md "Handoff, as built")."""

from __future__ import annotations

import time
from typing import Any

from bot.dialogue import events as ev
from handoff.hours import BusinessHours
from handoff.records import HandoffRecord


def event(kind: str, **fields: Any) -> ev.Event:
    return {"event": kind, "timestamp": time.time(), **fields}


def promised(reply_by: float | None) -> dict[str, Any]:
    """The wait's reply-by time (handoff/promise.py), on each of its events, when its channel promises one."""
    return {} if reply_by is None else {"reply_by": reply_by}


def spoken(language: str, traditional: bool = False) -> dict[str, Any]:
    """The fields that say how a notice is worded for the shopper (bot/notices.py): their language, and for Chinese
    whether in traditional characters."""
    return {"language": language, "traditional": True} if traditional else {"language": language}


def queued(record: HandoffRecord, position: int, eta_s: int | None, **extra: Any) -> ev.Event:
    """The shopper's place in line. `nobody_online`: nobody is online or away yet, so there is no wait to tell
    (eta_s is None) — the shopper may wait for the first agent to log in or leave a message."""
    return event(ev.QUEUED, position=position, eta_s=eta_s, nobody_online=eta_s is None, priority=record.priority,
                 group=record.group, **spoken(record.language, record.traditional), **promised(record.reply_by),
                 **extra)


def agent_assigned(record: HandoffRecord, transferred_from: str | None = None) -> ev.Event:
    extra = {"transferred_from": transferred_from} if transferred_from else {}
    return event(ev.AGENT_ASSIGNED, agent=record.agent, agent_name=record.agent_name,
                 **spoken(record.language, record.traditional), **promised(record.reply_by), **extra)


def unavailable(reason: str, hours: BusinessHours, now: float, language: str,
                reply_by: float | None = None, traditional: bool = False) -> ev.Event:
    """Nobody will come: closed (outside hours or a closed date: `next_open` says when people are back) or
    timeout (nobody took the chat in time). `reply_by`: when a person will have answered a message left now."""
    opening = hours.next_open(now) if reason == "closed" else None
    return event(ev.HANDOFF_UNAVAILABLE, reason=reason, next_open=opening.isoformat() if opening else None,
                 timezone=hours.timezone, **spoken(language, traditional), **promised(reply_by))
