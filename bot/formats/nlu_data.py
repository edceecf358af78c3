"""Rasa 3.x NLU training data: intents with annotated examples, synonyms, regexes and lookup tables."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from bot.formats.yaml_io import DataError, line_of

# [text](entity) · [text](entity:value) · [text]{"entity": "x", "value": "y", "role": "r", "group": "g"}
_ANNOTATION = re.compile(r"\[(?P<text>[^\]]+?)\](?:\((?P<short>[^)]+)\)|(?P<json>\{[^}]*\}))")


@dataclass
class Entity:
    entity: str
    value: str
    start: int
    end: int
    role: str | None = None
    group: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"entity": self.entity, "value": self.value, "start": self.start, "end": self.end}
        if self.role:
            out["role"] = self.role
        if self.group:
            out["group"] = self.group
        return out


@dataclass
class Example:
    text: str
    intent: str  # the full name; retrieval intents look like "faq/shipping_time"
    entities: list[Entity] = field(default_factory=list)
    source: str = ""

    @property
    def base_intent(self) -> str:
        return self.intent.split("/", 1)[0]


@dataclass
class NLUData:
    examples: list[Example] = field(default_factory=list)
    synonyms: dict[str, str] = field(default_factory=dict)  # lower-cased variant -> canonical value
    regexes: dict[str, list[str]] = field(default_factory=dict)  # name -> patterns
    lookups: dict[str, list[str]] = field(default_factory=dict)  # name -> values

    def merge(self, other: NLUData) -> None:
        self.examples.extend(other.examples)
        self.synonyms.update(other.synonyms)
        for name, patterns in other.regexes.items():
            self.regexes.setdefault(name, []).extend(patterns)
        for name, values in other.lookups.items():
            self.lookups.setdefault(name, []).extend(values)

    @property
    def intents(self) -> list[str]:
        """Base intents in first-seen order (retrieval intents count once, as "faq")."""
        return list(dict.fromkeys(e.base_intent for e in self.examples))

    @property
    def entity_names(self) -> list[str]:
        return list(dict.fromkeys(ent.entity for e in self.examples for ent in e.entities))


def parse_annotated(text: str, where: str = "") -> tuple[str, list[Entity]]:
    """Strip Rasa entity markup from an example, returning plain text and entity spans."""
    entities: list[Entity] = []
    plain_parts: list[str] = []
    cursor = 0
    length = 0
    for match in _ANNOTATION.finditer(text):
        before = text[cursor : match.start()]
        plain_parts.append(before)
        length += len(before)
        surface = match.group("text")
        start = length
        plain_parts.append(surface)
        length += len(surface)
        value = surface
        role = group = None
        if match.group("short"):
            name, _, short_value = match.group("short").partition(":")
            entity_name = name.strip()
            if short_value:
                value = short_value.strip()
        else:
            try:
                spec = json.loads(match.group("json"))
            except json.JSONDecodeError as exc:
                raise DataError(f"entity annotation {match.group(0)!r} is not valid JSON ({exc.msg})") from None
            if not isinstance(spec, dict) or "entity" not in spec:
                raise DataError(f"entity annotation {match.group(0)!r} needs an \"entity\" key")
            entity_name = str(spec["entity"])
            value = str(spec.get("value", surface))
            role, group = spec.get("role"), spec.get("group")
        entities.append(Entity(entity_name, value, start, start + len(surface), role, group))
        cursor = match.end()
    plain_parts.append(text[cursor:])
    return "".join(plain_parts), entities


def _example_lines(item: dict, path: str) -> list[tuple[str, int | None]]:
    """The `examples` of one block, as (text, line) pairs; accepts Rasa's string and list forms."""
    raw = item.get("examples")
    if raw is None:
        return []
    if isinstance(raw, str):
        first = line_of(raw) or line_of(item)
        out = []
        for offset, line in enumerate(raw.splitlines()):
            stripped = line.strip()
            if not stripped:
                continue
            if not stripped.startswith("-"):
                raise DataError(
                    f"example {stripped!r} must start with '- ' (one example per line)",
                    path,
                    (first + offset + 1) if first else None,
                )
            out.append((stripped[1:].strip(), (first + offset + 1) if first else None))
        return out
    if isinstance(raw, list):
        out = []
        for entry in raw:
            if isinstance(entry, dict) and "text" in entry:
                out.append((str(entry["text"]).strip(), line_of(entry)))
            elif isinstance(entry, str):
                out.append((entry.strip(), line_of(entry)))
            else:
                raise DataError("each example must be a string or a mapping with 'text'", path, line_of(raw))
        return out
    raise DataError("'examples' must be a block string ('examples: |') or a list", path, line_of(item))


def parse_nlu(blocks: Any, path: str) -> NLUData:
    """Parse the list under a file's `nlu:` key."""
    data = NLUData()
    if blocks is None:
        return data
    if not isinstance(blocks, list):
        raise DataError("'nlu' must be a list of blocks (- intent: …, - synonym: …)", path, line_of(blocks))
    for item in blocks:
        if not isinstance(item, dict):
            raise DataError("each 'nlu' item must be a mapping such as '- intent: greet'", path, line_of(blocks))
        line = line_of(item)
        if "intent" in item:
            intent = str(item["intent"]).strip()
            if not intent:
                raise DataError("empty intent name", path, line)
            for text, ex_line in _example_lines(item, path):
                try:
                    plain_text, entities = parse_annotated(text)
                except DataError as exc:
                    raise DataError(exc.message, path, ex_line) from None
                if plain_text:
                    data.examples.append(Example(plain_text, intent, entities, f"{path}:{ex_line or line}"))
        elif "synonym" in item:
            canonical = str(item["synonym"])
            for text, _ in _example_lines(item, path):
                data.synonyms[text.lower()] = canonical
        elif "regex" in item:
            name = str(item["regex"])
            for text, ex_line in _example_lines(item, path):
                try:
                    re.compile(text)
                except re.error as exc:
                    raise DataError(f"regex {name!r}: invalid pattern {text!r} ({exc})", path, ex_line) from None
                data.regexes.setdefault(name, []).append(text)
        elif "lookup" in item:
            name = str(item["lookup"])
            data.lookups.setdefault(name, []).extend(text for text, _ in _example_lines(item, path))
        else:
            raise DataError(
                f"unknown NLU block with keys {sorted(map(str, item))}: expected intent, synonym, regex or lookup",
                path,
                line,
            )
    # synonyms also come from annotations whose value differs from the surface text
    for example in data.examples:
        for ent in example.entities:
            surface = example.text[ent.start : ent.end]
            if surface != ent.value:
                data.synonyms.setdefault(surface.lower(), ent.value)
    return data
