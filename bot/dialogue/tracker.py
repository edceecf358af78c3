"""A conversation's state, derived from its events (the tracker store is the single source of truth)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from bot.dialogue import events as ev
from bot.dialogue.history import History
from bot.formats.domain import Domain
from bot.language import language_after

ACTION_LISTEN = "action_listen"


@dataclass
class Tracker:
    sender_id: str
    events: list[ev.Event] = field(default_factory=list)
    slots: dict[str, Any] = field(default_factory=dict)
    active_loop: str | None = None
    latest_message: dict[str, Any] = field(default_factory=dict)
    latest_action_name: str | None = None
    latest_input_channel: str | None = None
    paused: bool = False
    handoff_state: str | None = None  # None (bot) | "requested" | "queued" | "assigned"
    spoken_language: str | None = None  # as `conversation_language` reads it from the events (None before any)
    _domain_slots: dict[str, Any] = field(default_factory=dict, repr=False)
    _history: History = field(default_factory=lambda: History({}), repr=False)
    _latest: dict[str, int] = field(default_factory=dict, repr=False)  # event name -> its latest position

    def __post_init__(self) -> None:
        for i, event in enumerate(self.events):  # events given to the constructor (not applied): index them
            self._latest[event.get("event")] = i
            self.spoken_language = language_after(event, self.spoken_language)

    @classmethod
    def from_events(cls, sender_id: str, events: list[ev.Event], domain: Domain | None = None) -> Tracker:
        tracker = cls(sender_id)
        tracker._domain_slots = {n: s.initial_value for n, s in (domain.slots.items() if domain else [])}
        tracker.slots = dict(tracker._domain_slots)
        tracker._history = History(tracker._domain_slots)
        for event in events:
            tracker.apply(event)
        return tracker

    def copy(self) -> Tracker:
        """An independent tracker in the same state, without replaying its events (the events themselves are
        shared: stored events are never changed)."""
        other = copy.copy(self)
        other.events = list(self.events)
        other.slots = dict(self.slots)
        other.latest_message = dict(self.latest_message)
        other._history = self._history.copy()
        other._latest = dict(self._latest)
        return other

    @property
    def last_seq(self) -> int:
        return int(self.events[-1].get("seq", len(self.events))) if self.events else 0

    @property
    def human_holds(self) -> bool:
        """True while the conversation is with (or waiting for) a human: the bot stays silent."""
        return self.handoff_state is not None

    def apply(self, event: ev.Event) -> None:
        """Update derived state with one event and keep it."""
        kind = event.get("event")
        self._history.observe(len(self.events), event)
        self._latest[kind] = len(self.events)
        self.spoken_language = language_after(event, self.spoken_language)
        self.events.append(event)
        if kind == "user":
            self.latest_message = {
                "text": event.get("text"),
                "intent": (event.get("parse_data") or {}).get("intent", {}),
                "entities": (event.get("parse_data") or {}).get("entities", []),
                **(event.get("parse_data") or {}),
                "metadata": event.get("metadata") or {},  # as Rasa: actions read the channel's metadata here
            }
            self.latest_input_channel = event.get("input_channel") or self.latest_input_channel
        elif kind == "action":
            self.latest_action_name = event.get("name")
        elif kind == "slot":
            self.slots[event["name"]] = event.get("value")
        elif kind == "active_loop":
            self.active_loop = event.get("name")
        elif kind == "restart":
            self.slots = dict(self._domain_slots)
            self.active_loop = None
            self.handoff_state = None
        elif kind == "reset_slots":
            self.slots = dict(self._domain_slots)
        elif kind == "pause":
            self.paused = True
        elif kind == "resume":
            self.paused = False
        elif kind == ev.HANDOFF_REQUESTED:
            self.handoff_state = "requested"
        elif kind == ev.QUEUED:
            self.handoff_state = "queued"
        elif kind == ev.AGENT_ASSIGNED:
            self.handoff_state = "assigned"
        elif kind in (ev.HANDOFF_ENDED, ev.HANDOFF_CANCELLED, ev.HANDOFF_UNAVAILABLE):
            self.handoff_state = None

    # -- views -------------------------------------------------------------------------------------------------

    def turns_since_listen(self) -> list[ev.Event]:
        """Events after the latest user message (the actions of the current bot turn)."""
        for i in range(len(self.events) - 1, -1, -1):
            if self.events[i].get("event") == "user":
                return self.events[i + 1 :]
        return list(self.events)

    def applied_events(self) -> list[ev.Event]:
        """Events since the last restart / session start (what policies look at); in a long session only the
        recent past, after the state where it starts (history.py)."""
        return self._history.window(self.events)

    def latest(self, *kinds: str) -> ev.Event | None:
        """The most recent event of any of these kinds, found without reading back through the conversation."""
        found = [self._latest[kind] for kind in kinds if kind in self._latest]
        return self.events[max(found)] if found else None

    def get_slot(self, name: str) -> Any:
        return self.slots.get(name)

    def as_rasa_dict(self) -> dict[str, Any]:
        """Rasa's tracker JSON (`GET /conversations/{id}/tracker`, action server requests)."""
        latest_event_time = self.events[-1].get("timestamp") if self.events else None
        return {
            "sender_id": self.sender_id,
            "slots": self.slots,
            "latest_message": self.latest_message,
            "latest_event_time": latest_event_time,
            "followup_action": None,
            "paused": self.paused,
            "events": self.events,
            "latest_input_channel": self.latest_input_channel,
            "active_loop": {"name": self.active_loop} if self.active_loop else {},
            "latest_action": {"action_name": self.latest_action_name} if self.latest_action_name else {},
            "latest_action_name": self.latest_action_name,
            "handoff_state": self.handoff_state,
        }
