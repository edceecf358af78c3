"""What a shopper reads for events that have no text of their own, in their language: for channels that can
only show text (REST, WeChat, Messenger, the shell) and for anything else that wants the same wording.

`describe(event, language)` covers the handoff notices (queued, agent_assigned, handoff_ended,
handoff_unavailable, ticket_created) and returns None for everything else: bot and agent messages carry their
text, and private events (agent_note, handoff_requested…) are never shown to the shopper. `shopper_text` is the
text a shopper sees for any event that is not the bot's own answer (an agent's message or a notice).

The engine and the handoff side both produce these events; both import this module, neither the other.
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.dialogue import events as ev
from bot.dialogue.defaults import default_text
from bot.language import traditional

# Events a shopper should hear about although no shopper message of theirs caused them.
NOTICE_KINDS = {ev.QUEUED, ev.AGENT_ASSIGNED, ev.HANDOFF_ENDED, ev.HANDOFF_UNAVAILABLE, ev.TICKET_CREATED}

_WEEKDAYS = {
    "en": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    "zh": ["周一", "周二", "周三", "周四", "周五", "周六", "周日"],
}
_ZONE_NAMES = {"Asia/Shanghai": "北京时间", "Asia/Hong_Kong": "香港时间", "Asia/Taipei": "台北时间"}


def text(name: str, language: str | None, **fields: object) -> str:
    template = default_text(name, language) or ""
    return template.format(**fields)


def lang(language: str | None) -> str:
    return "zh" if language == "zh" else "en"


def format_opening(iso: str | None, zone_name: str | None, language: str, reference: float | None = None) -> str:
    """"2026-11-26T09:00:00+08:00" → "tomorrow 09:00 (Asia/Shanghai)" / "明天 09:00（北京时间）"."""
    language = lang(language)
    if not iso:
        return text("handoff_next_open_unknown", language)
    try:
        when = datetime.fromisoformat(iso)
        zone = ZoneInfo(zone_name) if zone_name else when.tzinfo
        when = when.astimezone(zone)
    except (ValueError, KeyError):
        return iso
    today = datetime.fromtimestamp(reference or time.time(), zone).date()
    if when.date() == today:
        day = "今天" if language == "zh" else "today"
    elif when.date() == today + timedelta(days=1):
        day = "明天" if language == "zh" else "tomorrow"
    else:
        weekday = _WEEKDAYS[language][when.weekday()]
        day = f"{when.month}月{when.day}日{weekday}" if language == "zh" else f"{weekday} {when:%b} {when.day}"
    zone_label = str(zone_name or when.tzname() or "")
    if language == "zh":
        return f"{day} {when:%H:%M}（{_ZONE_NAMES.get(zone_label, zone_label)}）"
    return f"{day} at {when:%H:%M} ({zone_label})"


# the events `describe` speaks of
NOTICES = frozenset({ev.QUEUED, ev.AGENT_ASSIGNED, ev.HANDOFF_ENDED, ev.HANDOFF_UNAVAILABLE, ev.TICKET_CREATED})


def needs_language(events: list[ev.Event]) -> bool:
    """Whether describing these events needs the conversation's language: a notice that carries none. Most turns
    have no notice, and a channel need not look the language up for them."""
    return any(event.get("event") in NOTICES and not event.get("language") for event in events)


def describe(event: ev.Event, language: str | None) -> str | None:
    """The shopper-facing text for a handoff event, or None if the event has no such text. A handoff event
    carries the language the conversation spoke when it happened, which wins over `language`, and whether the
    shopper writes traditional characters (handoff/events.py `spoken`), in which the text is then written."""
    said = _describe(event, language)
    return traditional(said) if said and event.get("traditional") else said


def _describe(event: ev.Event, language: str | None) -> str | None:
    kind = event.get("event")
    language = lang(event.get("language") or language)
    if kind == ev.QUEUED:
        if event.get("nobody_online"):  # in hours, but nobody has logged in yet: no wait to tell
            return text("handoff_queued_nobody_online", language, position=event.get("position"))
        minutes = max(1, math.ceil(float(event.get("eta_s") or 60) / 60))
        return text("handoff_queued", language, position=event.get("position"), minutes=minutes)
    if kind == ev.AGENT_ASSIGNED:
        name = event.get("agent_name") or event.get("agent") or ""
        key = "handoff_agent_transferred" if event.get("transferred_from") else "handoff_agent_joined"
        return text(key, language, agent_name=name)
    if kind == ev.HANDOFF_ENDED:
        return text("handoff_ended", language)
    if kind == ev.HANDOFF_UNAVAILABLE:
        reason = event.get("reason") if event.get("reason") in ("closed", "offline", "timeout") else "offline"
        opening = format_opening(event.get("next_open"), event.get("timezone"), language, event.get("timestamp"))
        return text(f"handoff_unavailable_{reason}", language, next_open=opening)
    if kind == ev.TICKET_CREATED:
        return text("ticket_created", language, ticket_id=event.get("ticket_id"))
    return None


def shopper_text(event: ev.Event, language: str | None) -> str | None:
    """The text a shopper sees for an agent's message or a handoff notice; None for anything else."""
    if event.get("event") == ev.AGENT_MESSAGE:
        return event.get("text") or None
    return describe(event, language)


def is_rating_request(event: ev.Event) -> bool:
    """The bot's "please rate this chat" after a handoff (handoff/shopper.py `rating_request`)."""
    return event.get("event") == "bot" and bool((event.get("data") or {}).get("rating_request"))


def is_notice(event: ev.Event) -> bool:
    """A handoff notice, or the rating request an agent's close appends: shown to the shopper exactly once, by
    the request whose turn made it or else from the event bus (channels decide who by claiming it)."""
    return event.get("event") in NOTICE_KINDS or is_rating_request(event)
