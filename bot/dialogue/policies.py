"""Rule and memoisation policies: which action comes next, learned from rules.yml and stories.yml."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from bot.dialogue.states import LISTEN, State, StateBuilder, featurize_slot, state_key, story_events, tracker_states
from bot.formats.domain import Domain
from bot.formats.stories import ANY_VALUE, Step, Story

MAX_EXPANSIONS = 64  # `or` steps and checkpoints multiply stories; cap the product per story


@dataclass
class Prediction:
    action: str
    policy: str
    confidence: float
    general: bool = False  # a rule that does not mention the active loop (RulePolicy hands back to the loop)


# -- story expansion ----------------------------------------------------------------------------------------------

def _expand_or(steps: list[Step]) -> list[list[Step]]:
    options = [step.alternatives if step.kind == "or" else [step] for step in steps]
    return [list(combo) for combo in itertools.islice(itertools.product(*options), MAX_EXPANSIONS)]


def expand_stories(stories: list[Story]) -> list[list[Step]]:
    """Flatten `or` steps and stitch checkpoints: a story starting at checkpoint X follows every story ending at X."""
    expanded: list[tuple[list[str], list[Step], list[str]]] = []
    for story in stories:
        for steps in _expand_or(story.steps):
            starts = [s.checkpoint for s in itertools.takewhile(lambda s: s.kind == "checkpoint", steps)]
            body = [s for s in steps if s.kind != "checkpoint"]
            ends = [s.checkpoint for s in itertools.takewhile(lambda s: s.kind == "checkpoint", reversed(steps))]
            expanded.append((starts, body, ends))
    results: list[list[Step]] = []

    def extend(prefix: list[Step], ends: list[str], depth: int) -> None:
        if not ends or depth > 4:
            results.append(prefix)
            return
        followers = [(b, e) for s, b, e in expanded if set(s) & set(ends)]
        if not followers:
            results.append(prefix)
        for body, next_ends in followers[:MAX_EXPANSIONS]:
            extend(prefix + body, next_ends, depth + 1)

    for starts, body, ends in expanded:
        if not starts:
            extend(body, ends, 0)
        else:  # also learn the continuation on its own, for conversations that reach it another way
            results.append(body)
    return results


def story_states(steps: list[Step], domain: Domain, wait_for_user_input: bool = True) -> StateBuilder:
    """States and actions of one story, read exactly as a live conversation's events are."""
    return tracker_states(story_events(steps, domain, wait_for_user_input), domain)


# -- memoisation --------------------------------------------------------------------------------------------------

_CONFLICT = "__conflict__"


class MemoizationPolicy:
    """Remembers which action followed each window of up to `max_history` states in the training stories.

    Falls back to shorter windows (like Rasa's AugmentedMemoizationPolicy) when the full one is unseen, but
    never predicts when the stories disagree for the window that matched, and never from the current state
    alone: a window holds at least what came before it — the previous state, or the conversation's start
    (`START`, as Rasa pads a story's beginning) — so "yes" means what the stories say only after the question
    they asked, and a "yes" out of the blue is not taken as an answer to it.
    """

    name = "MemoizationPolicy"

    def __init__(self, max_history: int = 5, lookup: dict[int, dict[tuple, str]] | None = None,
                 augmented: bool = False) -> None:
        self.max_history = max_history
        self.lookup: dict[int, dict[tuple, str]] = lookup or {}
        self.augmented = augmented  # AugmentedMemoizationPolicy: also match stories against the recent past alone

    def train(self, stories: list[Story], domain: Domain) -> None:
        for steps in expand_stories(stories):
            builder = story_states(steps, domain)
            keys = [START, *(state_key(s) for s in builder.states)]
            for i, action in enumerate(builder.actions, start=1):
                for length in range(2, min(self.max_history, i + 1) + 1):
                    key = tuple(keys[i - length + 1 : i + 1])
                    table = self.lookup.setdefault(length, {})
                    known = table.get(key)
                    table[key] = action if known in (None, action) else _CONFLICT

    def predict(self, states: list[State]) -> Prediction | None:
        keys = [START, *(state_key(s) for s in states)]
        for length in range(min(self.max_history, len(keys)), 1, -1):
            action = self.lookup.get(length, {}).get(tuple(keys[-length:]))
            if action == _CONFLICT:
                return None
            if action:
                confidence = 1.0 if length == min(self.max_history, len(keys)) else 0.9
                return Prediction(action, self.name, confidence)
        return None

    def recall_from_start(self, states: list[State]) -> Prediction | None:
        """The action a story that *began* with `states` takes next (AugmentedMemoizationPolicy's truncated
        history: the engine passes the states of the conversation's recent past, replayed on their own)."""
        if len(states) + 1 > self.max_history:
            return None
        action = self.lookup.get(len(states) + 1, {}).get((START, *(state_key(s) for s in states)))
        return Prediction(action, "AugmentedMemoizationPolicy", 1.0) if action and action != _CONFLICT else None

    def to_dict(self) -> dict[str, Any]:
        return {"max_history": self.max_history, "augmented": self.augmented,
                "lookup": {str(n): [[list(map(_jsonable, k)), a] for k, a in t.items()]
                           for n, t in self.lookup.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MemoizationPolicy:
        lookup = {int(n): {_key_from_json(k): a for k, a in rows} for n, rows in data["lookup"].items()}
        return cls(data["max_history"], lookup, bool(data.get("augmented")))


START = ("__start__", (), None, None, ())  # the state before a conversation's (or a story's) first one


def _jsonable(state: tuple) -> list:
    intent, entities, prev, loop, slots = state
    return [intent, list(entities), prev, loop, [list(kv) for kv in slots]]


def _key_from_json(rows: list) -> tuple:
    return tuple(
        (intent, tuple(entities), prev, loop, tuple(tuple(kv) for kv in slots))
        for intent, entities, prev, loop, slots in rows
    )


# -- rules --------------------------------------------------------------------------------------------------------

_UNSET = "__unset__"


def _compile_rule(rule: Story) -> list[tuple[list[dict[str, Any]], str]]:
    """Patterns for a rule: for each of its actions, the states (only the features it names) that lead to it."""
    current: dict[str, Any] = {}
    slot_constraints: dict[str, Any] = {}
    for step in rule.condition:
        if step.kind == "active_loop":
            current["active_loop"] = step.loop
        elif step.kind == "slot_was_set":
            slot_constraints.update(step.slots)
    current["slots"] = dict(slot_constraints)
    patterns: list[dict[str, Any]] = []
    out: list[tuple[list[dict[str, Any]], str]] = []
    started = False

    def push_action(action: str) -> None:
        out.append(([*patterns, _copy(current)], action))

    for step in rule.steps:
        if step.kind == "user":
            if started and current.get("prev_action") not in (None, LISTEN):
                push_action(LISTEN)
                patterns.append(_copy(current))
            elif started:
                patterns.append(_copy(current))
            current = {**_copy(current), "intent": step.intent.split("/")[0] if step.intent else None,
                       "prev_action": LISTEN}
            if step.entities:
                current["entities"] = {e["entity"] for e in step.entities}
            else:
                current.pop("entities", None)
            started = True
        elif step.kind == "action":
            if started:
                push_action(step.action)
                patterns.append(_copy(current))
            # else: a rule that starts with an action ("- action: utter_did_that_help", the form that just
            # finished) applies after that action: it is history to match, not something to predict, and
            # what came before it does not matter (Rasa's rule snippet `...`)
            started = True
            current = {**_copy(current), "prev_action": step.action}
        elif step.kind == "slot_was_set":
            current["slots"] = {**current.get("slots", {}), **step.slots}
        elif step.kind == "active_loop":
            current["active_loop"] = step.loop
    if rule.wait_for_user_input and current.get("prev_action") not in (None, LISTEN):
        push_action(LISTEN)
    return out


def _copy(pattern: dict[str, Any]) -> dict[str, Any]:
    return {k: (dict(v) if isinstance(v, dict) else set(v) if isinstance(v, set) else v) for k, v in pattern.items()}


def _matches(pattern: dict[str, Any], state: State, domain: Domain) -> bool:
    for key, expected in pattern.items():
        if key == "slots":
            for name, value in expected.items():
                slot = domain.slots.get(name)
                actual = state["slots"].get(name) if name in state["slots"] else (
                    featurize_slot(slot, None) if slot else None)
                if slot is not None and not slot.influence_conversation:
                    continue
                want = True if value == ANY_VALUE else (featurize_slot(slot, value) if slot else value)
                if actual != want:
                    return False
        elif key == "entities":
            if not expected <= set(state.get("entities") or ()):
                return False
        elif state.get(key) != expected:
            return False
    return True


class RulePolicy:
    """Applies rules.yml: the most specific rule whose steps match the end of the conversation wins."""

    name = "RulePolicy"

    def __init__(self, rules: list[tuple[list[dict[str, Any]], str, bool]] | None = None) -> None:
        self.rules = rules or []  # (patterns, action, conversation_start)

    def train(self, rules: list[Story], domain: Domain) -> None:
        for rule in rules:
            for steps in _expand_or(rule.steps):
                variant = Story(rule.name, steps, rule.source, True, rule.condition, rule.conversation_start,
                                rule.wait_for_user_input)
                for patterns, action in _compile_rule(variant):
                    self.rules.append((patterns, action, rule.conversation_start))

    def predict(self, states: list[State], domain: Domain) -> Prediction | None:
        best: tuple[tuple[int, int], str, bool] | None = None
        for patterns, action, conversation_start in self.rules:
            n = len(patterns)
            if n > len(states) or (conversation_start and n != len(states)):
                continue
            if all(_matches(p, s, domain) for p, s in zip(patterns, states[-n:], strict=True)):
                specificity = (n, sum(len(p) + len(p.get("slots", {})) for p in patterns))
                if best is None or specificity > best[0]:
                    best = (specificity, action, not patterns[-1].get("active_loop"))
        return Prediction(best[1], self.name, 1.0, general=best[2]) if best else None

    def to_dict(self) -> dict[str, Any]:
        return {"rules": [[[_pattern_json(p) for p in pats], a, c] for pats, a, c in self.rules]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RulePolicy:
        return cls([([_pattern_from_json(p) for p in pats], a, c) for pats, a, c in data["rules"]])


def _pattern_json(pattern: dict[str, Any]) -> dict[str, Any]:
    return {k: sorted(v) if isinstance(v, set) else v for k, v in pattern.items()}


def _pattern_from_json(pattern: dict[str, Any]) -> dict[str, Any]:
    return {k: set(v) if k == "entities" else v for k, v in pattern.items()}
