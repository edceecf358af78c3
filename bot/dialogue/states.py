"""Dialogue states: what the policies see before each action (Rasa's state featurisation, simplified).

A state is a mapping of features: the latest intent and entity names, the previous action, the active loop
and the featurised values of slots that influence the conversation. Trackers and training stories are both
turned into sequences of states, so rules and memorised stories can be matched against live conversations.
"""

from __future__ import annotations

from typing import Any

from bot.dialogue import events as ev
from bot.formats.domain import Domain, Slot

State = dict[str, Any]
LISTEN = "action_listen"
SKIPPED_ACTIONS = {"action_session_start", "action_extract_slots"}
# After these the bot takes the conversation back from the human side: it starts over, keeping the slots, so what
# was said before the handoff ("yes" to an offer of a person) does not decide what a "yes" now means.
BOT_RESUMES = {ev.HANDOFF_ENDED, ev.HANDOFF_CANCELLED, ev.TICKET_CREATED}


def featurize_slot(slot: Slot, value: Any) -> Any:
    """What a policy may distinguish about a slot value (set or not, or the category)."""
    if value is None:
        return None
    if slot.type == "bool":
        return bool(value)
    if slot.type == "categorical":
        text = str(value).lower()
        return text if text in {v.lower() for v in slot.values} else "__other__"
    return True


def slot_features(domain: Domain, slots: dict[str, Any]) -> dict[str, Any]:
    return {
        name: featurize_slot(slot, slots.get(name))
        for name, slot in domain.slots.items()
        if slot.influence_conversation
    }


def state_key(state: State) -> tuple:
    """A hashable form for exact matching (memoisation)."""
    return (
        state.get("intent"),
        tuple(sorted(state.get("entities") or ())),
        state.get("prev_action"),
        state.get("active_loop"),
        tuple(sorted((k, v) for k, v in (state.get("slots") or {}).items() if v is not None)),
    )


class StateBuilder:
    """Accumulates events (or story steps) into the state sequence seen before each action."""

    def __init__(self, domain: Domain) -> None:
        self.domain = domain
        self.intent: str | None = None
        self.entities: frozenset[str] = frozenset()
        self.prev_action: str | None = None
        self.active_loop: str | None = None
        self.slots: dict[str, Any] = {n: s.initial_value for n, s in domain.slots.items()}
        self.states: list[State] = []  # states before each action, in order
        self.actions: list[str] = []  # the action taken in each of those states

    def current(self) -> State:
        return {
            "intent": self.intent,
            "entities": self.entities,
            "prev_action": self.prev_action,
            "active_loop": self.active_loop,
            "slots": slot_features(self.domain, self.slots),
        }

    def user(self, intent: str | None, entity_names: list[str]) -> None:
        self.intent = intent.split("/")[0] if intent else None
        self.entities = frozenset(entity_names)
        self.prev_action = LISTEN

    def action(self, name: str) -> None:
        if name in SKIPPED_ACTIONS:
            return
        self.states.append(self.current())
        self.actions.append(name)
        self.prev_action = name

    def slot(self, name: str, value: Any) -> None:
        self.slots[name] = value

    def loop(self, name: str | None) -> None:
        if name and self.actions and self.actions[-1] == name and self.prev_action == name:
            # the form just ran: count the loop as active for that step, so rules that follow a finished
            # loop ("condition: active_loop: F … active_loop: null") match a form completed in one go
            self.states[-1]["active_loop"] = name
        self.active_loop = name

    def reset(self) -> None:
        self.__init__(self.domain)  # type: ignore[misc]

    def start_over(self) -> None:
        """A fresh history with the slots as they are."""
        slots = self.slots
        self.reset()
        self.slots = slots


def tracker_states(events: list[dict[str, Any]], domain: Domain) -> StateBuilder:
    """Replay a conversation's events (since its last session start, or since the bot took it back from a
    person) into states."""
    builder = StateBuilder(domain)
    for event in events:
        kind = event.get("event")
        if kind in ("session_started", "restart"):
            builder.reset()
        elif kind in BOT_RESUMES:
            builder.start_over()
        elif kind == "user":
            parse = event.get("parse_data") or {}
            builder.user((parse.get("intent") or {}).get("name"), [e["entity"] for e in parse.get("entities") or []])
        elif kind == "action":
            name = event.get("name")
            if name == LISTEN and builder.prev_action in (None, LISTEN):
                continue  # listening before the first message carries no information
            builder.action(name)
        elif kind == "slot":
            builder.slot(event["name"], event.get("value"))
        elif kind == "active_loop":
            builder.loop(event.get("name"))
    return builder
