"""Slot filling (Rasa 3 slot mappings) and the form loop: ask for each required slot until all are set."""

from __future__ import annotations

from typing import Any

from bot.action_runner import ActionResult
from bot.dialogue import events as ev
from bot.dialogue.tracker import Tracker
from bot.formats.domain import Domain, Form

REQUESTED_SLOT = "requested_slot"
_NOTHING = object()


def _listify(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def mapping_applies(mapping: dict[str, Any], intent: str | None, tracker: Tracker) -> bool:
    if mapping.get("intent") and intent not in _listify(mapping["intent"]):
        return False
    if intent in _listify(mapping.get("not_intent")):
        return False
    conditions = mapping.get("conditions")
    if not conditions:
        return True
    for condition in conditions:
        loop_ok = condition.get("active_loop") == tracker.active_loop
        wanted = condition.get("requested_slot")
        if loop_ok and (wanted is None or wanted == tracker.slots.get(REQUESTED_SLOT)):
            return True
    return False


def mapped_value(mapping: dict[str, Any], slot_type: str, parse: dict[str, Any], text: str,
                 trigger_intents: set[str]) -> Any:
    kind = mapping.get("type")
    intent = (parse.get("intent") or {}).get("name")
    if kind == "from_entity":
        values = [
            e.get("value")
            for e in parse.get("entities") or []
            if e.get("entity") == mapping.get("entity")
            and (mapping.get("role") is None or e.get("role") == mapping["role"])
            and (mapping.get("group") is None or e.get("group") == mapping["group"])
        ]
        if not values:
            return _NOTHING
        return values if slot_type == "list" else values[0]
    if kind == "from_text":
        return text
    if kind == "from_intent":
        return mapping.get("value") if intent in _listify(mapping.get("intent")) else _NOTHING
    if kind == "from_trigger_intent":
        return mapping.get("value") if intent in trigger_intents else _NOTHING
    return _NOTHING  # "custom": filled by actions


def extract_slots(domain: Domain, tracker: Tracker, parse: dict[str, Any], text: str,
                  trigger_intents: set[str] | None = None) -> list[ev.Event]:
    """Slot events for this user message (Rasa's `action_extract_slots`)."""
    intent = (parse.get("intent") or {}).get("name")
    out: list[ev.Event] = []
    for name, slot in domain.slots.items():
        for mapping in slot.mappings:
            if mapping.get("type") == "from_trigger_intent" and not trigger_intents:
                continue
            if not mapping_applies(mapping, intent, tracker):
                continue
            value = mapped_value(mapping, slot.type, parse, text, trigger_intents or set())
            if value is _NOTHING:
                continue
            value = slot.coerce(value)
            if tracker.slots.get(name) != value:
                out.append(ev.slot(name, value))
            break
    return out


NOT_SET = object()  # validation said nothing about `requested_slot`


def prefilled_slots(form: Form, tracker: Tracker) -> dict[str, Any]:
    """Required slots already set when the form starts: Rasa validates them at activation."""
    return {s: tracker.slots.get(s) for s in form.required_slots if tracker.slots.get(s) is not None}


def slot_candidates(form: Form, tracker: Tracker) -> dict[str, Any]:
    """The form's slots set since the user last spoke: what this turn gave the form."""
    return {e["name"]: e.get("value") for e in tracker.turns_since_listen()
            if e.get("event") == "slot" and e["name"] in form.required_slots}


def rejects(form: Form, tracker: Tracker, candidates: dict[str, Any], validation: ActionResult | None) -> bool:
    """Rasa's ActionExecutionRejection: a slot was asked for, and nothing the form needs came (nor did its
    validation set one), so the message is something else — a rule, a story or the FAQ should answer it."""
    events = validation.events if validation else []
    validated = any(e.get("event") == "slot" and e.get("name") != REQUESTED_SLOT for e in events)
    manual = any(e.get("event") == "action_execution_rejected" for e in events)
    return bool(tracker.slots.get(REQUESTED_SLOT)) and not candidates and not validated and not manual


def requested_by_validation(validation: ActionResult | None) -> Any:
    """The `requested_slot` a validation action chose (None: the form is done), or NOT_SET."""
    for event in reversed(validation.events if validation else []):
        if event.get("event") == "slot" and event.get("name") == REQUESTED_SLOT:
            return event.get("value")
    return NOT_SET


def next_slot(form: Form, tracker: Tracker) -> str | None:
    return next((s for s in form.required_slots if tracker.slots.get(s) is None), None)


def ask_action(form: Form, slot: str, domain: Domain) -> str | None:
    """Rasa's order: `action_ask_<form>_<slot>`, `utter_ask_<form>_<slot>`, `action_ask_<slot>`,
    `utter_ask_<slot>` — each only when the domain has it."""
    known = set(domain.action_names)
    return next((name for name in (f"action_ask_{form.name}_{slot}", f"utter_ask_{form.name}_{slot}",
                                   f"action_ask_{slot}", f"utter_ask_{slot}") if name in known), None)
