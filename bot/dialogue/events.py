"""Event constructors. Events are plain dicts in Rasa's tracker JSON format, plus kefu's handoff events.

Every stored event also gets `seq` (per-conversation, 1-based, assigned by the tracker store).
"""

from __future__ import annotations

import time
from typing import Any

Event = dict[str, Any]

# kefu's own events (design.md): the human side of a conversation.
HANDOFF_REQUESTED = "handoff_requested"
QUEUED = "queued"
AGENT_ASSIGNED = "agent_assigned"
AGENT_MESSAGE = "agent_message"
AGENT_NOTE = "agent_note"
HANDOFF_ENDED = "handoff_ended"
CSAT = "csat"
HANDOFF_CANCELLED = "handoff_cancelled"  # the shopper stopped waiting: back to the bot
HANDOFF_UNAVAILABLE = "handoff_unavailable"  # {reason: offline | closed | timeout, next_open}: leave a message
TICKET_CREATED = "ticket_created"  # {ticket_id, text}: a message left for the shop
HANDOFF_EVENTS = {HANDOFF_REQUESTED, QUEUED, AGENT_ASSIGNED, AGENT_MESSAGE, AGENT_NOTE, HANDOFF_ENDED, CSAT,
                  HANDOFF_CANCELLED, HANDOFF_UNAVAILABLE, TICKET_CREATED}
# Not stored, only published on the bus: {"event": "typing", "role": "user" | "bot" | "agent", "on": bool}
TYPING = "typing"


def _event(kind: str, **fields: Any) -> Event:
    return {"event": kind, "timestamp": time.time(), **fields}


def user(text: str, parse_data: dict[str, Any] | None = None, input_channel: str | None = None,
         message_id: str | None = None, metadata: dict[str, Any] | None = None) -> Event:
    return _event("user", text=text, parse_data=parse_data or {}, input_channel=input_channel,
                  message_id=message_id, metadata=metadata or {})


def bot(text: str | None, data: dict[str, Any] | None = None, utter_action: str | None = None) -> Event:
    metadata = {"utter_action": utter_action} if utter_action else {}
    return _event("bot", text=text, data=data or {}, metadata=metadata)


def action(name: str, policy: str | None = None, confidence: float = 1.0) -> Event:
    return _event("action", name=name, policy=policy, confidence=confidence)


def slot(name: str, value: Any) -> Event:
    return _event("slot", name=name, value=value)


def active_loop(name: str | None) -> Event:
    return _event("active_loop", name=name)


def session_started() -> Event:
    return _event("session_started")


def restarted() -> Event:
    return _event("restart")


def action_execution_rejected(name: str) -> Event:
    return _event("action_execution_rejected", name=name)


def handoff_requested(reason: str, candidates: list[dict[str, Any]], language: str | None = None) -> Event:
    return _event(HANDOFF_REQUESTED, reason=reason, candidates=candidates, language=language)
