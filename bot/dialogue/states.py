"""Dialogue states: what the policies see before each action (Rasa 3's state featurisation).

A state is a mapping of features: the latest intent and entity names, the previous action, the active loop
and the featurised values of slots that influence the conversation. Live trackers and training stories are
both turned into events first and then into the same sequences of states (`tracker_states`), so rules,
memorised stories and the learned policy see a conversation exactly as they saw the stories.

As in Rasa, the happy-path turns of an active form collapse (`collapse_loop_turns`): a form that asks five
questions looks like one that asked one, so stories and rules about a form do not depend on its length.
"""

from __future__ import annotations

from typing import Any

from bot.dialogue import events as ev
from bot.formats.domain import Domain, Slot
from bot.formats.stories import ANY_VALUE, Step

State = dict[str, Any]
LISTEN = "action_listen"
SKIPPED_ACTIONS = {"action_session_start", "action_extract_slots"}
REJECTED = "action_execution_rejected"
# Not stored: starts a long conversation's recent past (history.py), which is not the conversation's start.
HISTORY_CUT = "history_cut"
CUT_STATE: State = {"intent": None, "entities": frozenset(), "prev_action": HISTORY_CUT, "active_loop": None,
                    "slots": {}}
# After these the bot takes the conversation back from the human side: it starts over, keeping the slots, so what
# was said before the handoff ("yes" to an offer of a person) does not decide what a "yes" now means.
BOT_RESUMES = {ev.HANDOFF_ENDED, ev.HANDOFF_CANCELLED, ev.TICKET_CREATED}


def featurize_slot(slot: Slot, value: Any) -> Any:
    """What a policy may distinguish about a slot value (set or not, or the category)."""
    if value is None or (slot.type == "list" and not value):
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
    """Accumulates events into the state sequence seen before each action."""

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
        self.active_loop = name

    def cut(self) -> None:
        """What came before is left out: one placeholder state stands for it, so rules for a conversation's
        start and stories' beginnings (memoisation's START) do not match a recent past."""
        self.states.append(dict(CUT_STATE))
        self.actions.append(HISTORY_CUT)
        self.prev_action = HISTORY_CUT

    def reset(self) -> None:
        self.__init__(self.domain)  # type: ignore[misc]

    def start_over(self) -> None:
        """A fresh history with the slots as they are."""
        slots = self.slots
        self.reset()
        self.slots = slots


def _loop_ran_before(loop: str, done: list[ev.Event]) -> bool:
    """True when `loop` already ran in this stretch of its happy path (Rasa's
    `_first_loop_execution_or_unhappy_path`, negated)."""
    next_action: str | None = None
    for event in reversed(done):
        kind = event.get("event")
        if kind == "active_loop" and event.get("name") is None:
            return False
        if kind == REJECTED and event.get("name") == loop:
            return False
        if kind == "user" and next_action is not None and next_action != loop:
            return False  # something else answered the user: an unhappy path
        if kind == "action":
            if event.get("name") == loop:
                return True
            next_action = event.get("name")
    return False


def collapse_loop_turns(events: list[ev.Event]) -> list[ev.Event]:
    """Drop the turns between two runs of a form on its happy path (Rasa's `applied_events`), keeping the
    slots they set: the policies see the form's first run and what happened when it ended."""
    loops = {e.get("name") for e in events if e.get("event") == "active_loop" and e.get("name")}
    done: list[ev.Event] = []
    for event in events:
        name = event.get("name")
        if event.get("event") == "action" and name in loops and _loop_ran_before(name, done):
            kept: list[ev.Event] = []
            while done and not (done[-1].get("event") == "action" and done[-1].get("name") == name):
                last = done.pop()
                if last.get("event") not in ("action", "user"):
                    kept.append(last)
            done.extend(reversed(kept))
            continue
        done.append(event)
    return done


def tracker_states(events: list[dict[str, Any]], domain: Domain) -> StateBuilder:
    """Replay a conversation's events (since its last session start, or since the bot took it back from a
    person) into states."""
    builder = StateBuilder(domain)
    start = 0
    for i, event in enumerate(events):
        if event.get("event") in ("session_started", "restart"):
            start = i
    for event in collapse_loop_turns(events[start:]):
        kind = event.get("event")
        if kind in ("session_started", "restart"):
            builder.reset()
        elif kind == HISTORY_CUT:
            builder.cut()
        elif kind in BOT_RESUMES:
            builder.start_over()
        elif kind == "user":
            parse = event.get("parse_data") or {}
            intent = (parse.get("intent") or {}).get("name")
            builder.user(intent, domain.featurized_entities(intent, entity_labels(parse.get("entities") or [])))
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


def entity_labels(entities: list[dict[str, Any]]) -> list[str]:
    """Entity names as Rasa featurises them: the name, and name#role / name#group when given."""
    labels = [e["entity"] for e in entities if "entity" in e]
    labels += [f"{e['entity']}#{e[k]}" for k in ("role", "group") for e in entities if "entity" in e and e.get(k)]
    return labels


def loop_status(events: list[dict[str, Any]]) -> tuple[str | None, str | None, bool]:
    """(active loop, latest action, whether the loop was rejected since it last ran), as Rasa's tracker
    keeps them: a rejection lasts until the loop runs again."""
    loop: str | None = None
    latest: str | None = None
    rejected = False
    for event in events:
        kind = event.get("event")
        if kind in ("session_started", "restart"):
            loop, latest, rejected = None, None, False
        elif kind == "active_loop":
            loop, rejected = event.get("name"), False
        elif kind == REJECTED and event.get("name") == loop:
            rejected = True
        elif kind == "action" and event.get("name") not in SKIPPED_ACTIONS:
            latest = event.get("name")
            if latest == loop:
                rejected = False
    return loop, latest, rejected


# -- stories as events ----------------------------------------------------------------------------------------

def user_event(step: Step) -> ev.Event:
    """A story's user turn as the event a tracker would hold (the story's own intent and entities)."""
    intent = step.intent or ""
    parse = {"intent": {"name": intent.split("/")[0], "confidence": 1.0}, "entities": list(step.entities)}
    if "/" in intent:
        parse["full_retrieval_intent"] = intent
    event = ev.user(step.text or (f"/{intent}" if intent else ""), parse)
    return event


def entity_slots(domain: Domain, entities: list[dict[str, Any]]) -> list[ev.Event]:
    """Slots a story's entities set by themselves (Rasa's `slots_for_entities`: `from_entity` mappings that do
    not depend on an active form)."""
    out = []
    for name, slot in domain.slots.items():
        for mapping in slot.mappings:
            conditions = mapping.get("conditions") or []
            if mapping.get("type") != "from_entity" or (conditions and conditions[0].get("active_loop")):
                continue
            values = [e.get("value") for e in entities if e.get("entity") == mapping.get("entity") and "value" in e
                      and all(mapping.get(k) in (None, e.get(k)) for k in ("role", "group"))]
            if values:
                out.append(ev.slot(name, values if slot.type == "list" else values[-1]))
                break
    return out


def story_events(steps: list[Step], domain: Domain, final_listen: bool = True,
                 sources: list[Step] | None = None) -> list[ev.Event]:
    """A story's steps as tracker events, with the `action_listen` before each user turn and (unless the
    story says not to wait) at its end, as Rasa's `explicit_events`. `sources`, when given, receives the step
    each event comes from."""
    events: list[ev.Event] = []
    origin: list[Step] = [] if sources is None else sources

    def add(step: Step, *new: ev.Event) -> None:
        events.extend(new)
        origin.extend(step for _ in new)

    def listen(step: Step) -> None:
        if not events or events[-1].get("event") != "action" or events[-1].get("name") != LISTEN:
            add(step, ev.action(LISTEN))

    for step in steps:
        if step.kind == "user":
            listen(step)
            add(step, user_event(step), *entity_slots(domain, step.entities))
        elif step.kind == "action":
            add(step, ev.action(step.action or ""))
        elif step.kind == "slot_was_set":
            add(step, *(ev.slot(name, True if value == ANY_VALUE else value) for name, value in step.slots.items()))
        elif step.kind == "active_loop":
            add(step, ev.active_loop(step.loop))
    if final_listen and events:
        listen(steps[-1])
    return events
