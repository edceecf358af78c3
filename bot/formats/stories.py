"""Rasa 3.x rules, stories and test stories, as lists of steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.formats.nlu_data import Entity, parse_annotated
from bot.formats.yaml_io import DataError, line_of, plain


@dataclass
class Step:
    """One step: a user turn (intent and/or text), an action, slots set, an active loop, a checkpoint or an `or`."""

    kind: str  # "user" | "action" | "slot_was_set" | "active_loop" | "checkpoint" | "or" | "bot"
    intent: str | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)  # [{"entity", "value"?}]
    text: str | None = None  # user text (test stories, end-to-end) or bot text
    action: str | None = None
    slots: dict[str, Any] = field(default_factory=dict)  # slot_was_set; value ... means "set to anything"
    loop: str | None = None
    checkpoint: str | None = None
    alternatives: list[Step] = field(default_factory=list)
    line: int | None = None


ANY_VALUE = "__any__"


@dataclass
class Story:
    name: str
    steps: list[Step]
    source: str = ""
    is_rule: bool = False
    condition: list[Step] = field(default_factory=list)
    conversation_start: bool = False
    wait_for_user_input: bool = True


def _entities(raw: Any, path: str, line: int | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in raw or []:
        if isinstance(item, str):
            out.append({"entity": str(item)})
        elif isinstance(item, dict):
            if "entity" in item:
                out.append({k: plain(v) for k, v in item.items()})
            else:
                for name, value in item.items():
                    out.append({"entity": str(name), "value": plain(value)})
        else:
            raise DataError("entities must be names or name: value pairs", path, line)
    return out


def _slots(raw: Any, path: str, line: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    items = raw if isinstance(raw, list) else [raw]
    for item in items:
        if isinstance(item, str):
            out[str(item)] = ANY_VALUE
        elif isinstance(item, dict):
            out.update({str(k): plain(v) for k, v in item.items()})
        else:
            raise DataError("slot_was_set entries must be 'name' or 'name: value'", path, line)
    return out


def parse_step(raw: Any, path: str, test: bool = False) -> Step | None:
    line = line_of(raw)
    if raw == "...":  # Rasa's "any history before this": rules only match the end of a conversation anyway
        return None
    if not isinstance(raw, dict):
        raise DataError("each step must be a mapping such as '- intent: greet' or '- action: utter_greet'", path, line)
    if "user" in raw:
        text, entities = parse_annotated(str(raw["user"]).strip())
        intent = raw.get("intent")
        return Step("user", intent=str(intent) if intent else None, text=text,
                    entities=[e.as_dict() for e in entities], line=line)
    if "intent" in raw:
        return Step("user", intent=str(raw["intent"]), entities=_entities(raw.get("entities"), path, line),
                    line=line)
    if "action" in raw:
        return Step("action", action=str(raw["action"]), line=line)
    if "bot" in raw:
        return Step("bot", text=str(raw["bot"]), line=line)
    if "slot_was_set" in raw:
        return Step("slot_was_set", slots=_slots(raw["slot_was_set"], path, line), line=line)
    if "active_loop" in raw:
        loop = raw["active_loop"]
        return Step("active_loop", loop=str(loop) if loop else None, line=line)
    if "checkpoint" in raw:
        return Step("checkpoint", checkpoint=str(raw["checkpoint"]), line=line)
    if "or" in raw:
        alternatives = [s for s in (parse_step(alt, path, test) for alt in raw["or"] or []) if s]
        return Step("or", alternatives=alternatives, line=line)
    raise DataError(
        f"unknown step with keys {sorted(map(str, raw))}: expected intent, user, action, slot_was_set, "
        "active_loop, checkpoint or or",
        path,
        line,
    )


def parse_stories(blocks: Any, path: str, key: str) -> list[Story]:
    """Parse the list under `stories:` or `rules:`."""
    if blocks is None:
        return []
    if not isinstance(blocks, list):
        raise DataError(f"'{key}' must be a list", path, line_of(blocks))
    is_rule = key == "rules"
    out = []
    for item in blocks:
        line = line_of(item)
        label = "rule" if is_rule else "story"
        if not isinstance(item, dict) or label not in item:
            raise DataError(f"each entry of '{key}' needs a '{label}:' name", path, line)
        steps_raw = item.get("steps")
        if not isinstance(steps_raw, list):
            raise DataError(f"{label} {item[label]!r} needs a list of 'steps'", path, line)
        condition = [s for s in (parse_step(s, path) for s in item.get("condition") or []) if s]
        out.append(
            Story(
                name=str(item[label]),
                steps=[s for s in (parse_step(s, path) for s in steps_raw) if s],
                source=f"{path}:{line}",
                is_rule=is_rule,
                condition=condition,
                conversation_start=bool(item.get("conversation_start", False)),
                wait_for_user_input=bool(item.get("wait_for_user_input", True)),
            )
        )
    return out


def step_entities_as_objects(step: Step) -> list[Entity]:
    return [Entity(e["entity"], str(e.get("value", "")), e.get("start", 0), e.get("end", 0)) for e in step.entities]
