"""Entity extraction from what the training data declares, plus the built-in shop entities.

Sources, strongest first when two spans overlap:
1. `regex` blocks of nlu.yml (entity = the regex name), extractor "RegexEntityExtractor";
2. `lookup` tables, and the values annotated in training examples (Rasa's lookup-from-annotations idea),
   extractor "EntityRuler": a spaCy EntityRuler matches them as whole tokens, case-insensitively; values with
   Han characters are matched as plain substrings instead, because jieba may segment a value differently
   inside a sentence than on its own;
3. built-ins (order_id, phone, email, amount: builtin_entities.py), except for a name that nlu.yml already
   defines as a regex or lookup: the bot's own definition takes precedence.
Then synonyms map values to their canonical form (Rasa's EntitySynonymMapper).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

from bot.formats.nlu_data import NLUData
from bot.language import HAN, mainland_chinese
from bot.nlu import builtin_entities
from bot.nlu.tokenizer import get_nlp, make_doc

REGEX_EXTRACTOR = "RegexEntityExtractor"
RULER_EXTRACTOR = "EntityRuler"
SYNONYM_PROCESSOR = "EntitySynonymMapper"
_PRIORITY = {REGEX_EXTRACTOR: 4, RULER_EXTRACTOR: 3, builtin_entities.EXTRACTOR: 1}
# within the built-ins: an order number after an order word beats an e-mail, an amount and a phone number,
# which all beat a bare long number taken for an order number
_BUILTIN_PRIORITY = {"order_id": 3.0, "email": 2.5, "amount": 2.0, "phone": 1.5}
_BARE_ORDER_PRIORITY = 1.0
MIN_ANNOTATED_LENGTH = 2  # shorter annotated values ("a", "1") would match everywhere


@dataclass
class Phrase:
    text: str
    entity: str
    role: str | None = None
    group: str | None = None


@dataclass
class EntityExtractor:
    regexes: dict[str, list[str]] = field(default_factory=dict)
    phrases: list[Phrase] = field(default_factory=list)
    synonyms: dict[str, str] = field(default_factory=dict)
    builtins: list[str] = field(default_factory=lambda: list(builtin_entities.FINDERS))

    def __post_init__(self) -> None:
        self._compiled = [(name, re.compile(p)) for name, patterns in self.regexes.items() for p in patterns]
        self._han_phrases = [(p, p.text.lower()) for p in self.phrases if HAN.search(p.text)]
        self._rulers: dict[str, Any] = {}
        self._ruler_lock = threading.Lock()

    @classmethod
    def from_data(cls, data: NLUData) -> EntityExtractor:
        """Values in traditional characters are kept as simplified: messages are read so (NLUPipeline.parse_batch)."""
        phrases: dict[tuple[str, str], Phrase] = {}
        for name, values in data.lookups.items():
            for value in map(mainland_chinese, values):
                if value.strip():
                    phrases.setdefault((value.strip().lower(), name), Phrase(value.strip(), name))
        for example in data.examples:
            for ent in example.entities:
                surface = mainland_chinese(example.text[ent.start : ent.end].strip())
                if len(surface) >= MIN_ANNOTATED_LENGTH:
                    phrases.setdefault((surface.lower(), ent.entity), Phrase(surface, ent.entity, ent.role, ent.group))
        declared = set(data.regexes) | set(data.lookups)
        builtins = [name for name in builtin_entities.FINDERS if name not in declared]
        return cls({k: list(v) for k, v in data.regexes.items()}, list(phrases.values()),
                   {mainland_chinese(said): value for said, value in data.synonyms.items()}, builtins)

    def _ruler(self, language: str) -> Any:
        """A spaCy EntityRuler over the phrases, built on first use per language, then only read."""
        ruler = self._rulers.get(language)
        if ruler is not None:
            return ruler
        with self._ruler_lock:
            ruler = self._rulers.get(language)
            if ruler is not None:
                return ruler
            from spacy.pipeline import EntityRuler

            nlp = get_nlp(language)
            ruler = EntityRuler(nlp, phrase_matcher_attr="LOWER", overwrite_ents=True)
            patterns = []
            for i, phrase in enumerate(self.phrases):
                if HAN.search(phrase.text):  # matched as substrings instead (see _phrase_matches)
                    continue
                patterns.append({"label": phrase.entity, "pattern": phrase.text, "id": str(i)})
            if patterns:
                ruler.add_patterns(patterns)
            self._rulers[language] = ruler
        return ruler

    def extract(self, text: str, language: str, doc: Any = None) -> list[dict[str, Any]]:
        candidates: list[dict[str, Any]] = []
        for name, pattern in self._compiled:
            for m in pattern.finditer(text):
                if m.end() > m.start():
                    candidates.append(_entity(name, m.group(0), m.start(), m.end(), REGEX_EXTRACTOR))
        if self.phrases:
            candidates.extend(self._phrase_matches(text, language, doc))
        for name in self.builtins:
            candidates.extend(builtin_entities.FINDERS[name](text))
        return [self._map_synonym(e) for e in _resolve_overlaps(candidates)]

    def _phrase_matches(self, text: str, language: str, doc: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        doc = doc if doc is not None else make_doc(text, language)
        for span in self._ruler(language)(doc).ents:
            phrase = self.phrases[int(span.ent_id_)] if span.ent_id_ else Phrase(span.text, span.label_)
            found.append(_phrase_entity(phrase, span.text, span.start_char, span.end_char))
        lowered = text.lower()
        for phrase, needle in self._han_phrases:
            start = lowered.find(needle)
            while start >= 0:
                found.append(_phrase_entity(phrase, text[start : start + len(needle)], start, start + len(needle)))
                start = lowered.find(needle, start + len(needle))
        return found

    def _map_synonym(self, entity: dict[str, Any]) -> dict[str, Any]:
        value = entity["value"]
        if isinstance(value, str):
            canonical = self.synonyms.get(value.lower())
            if canonical is not None and canonical != value:
                entity["value"] = canonical
                entity.setdefault("processors", []).append(SYNONYM_PROCESSOR)
        return entity

    def state(self) -> dict[str, Any]:
        return {
            "regexes": self.regexes,
            "phrases": [vars(p) for p in self.phrases],
            "synonyms": self.synonyms,
            "builtins": self.builtins,
        }

    @classmethod
    def from_state(cls, raw: dict[str, Any]) -> EntityExtractor:
        phrases = [Phrase(str(p["text"]), str(p["entity"]), p.get("role"), p.get("group")) for p in raw["phrases"]]
        unknown = set(raw["builtins"]) - set(builtin_entities.FINDERS)
        if unknown:
            raise ValueError(f"unknown built-in entities {sorted(unknown)}")
        return cls(dict(raw["regexes"]), phrases, dict(raw["synonyms"]), list(raw["builtins"]))


def _entity(name: str, value: str, start: int, end: int, extractor: str) -> dict[str, Any]:
    return {"entity": name, "value": value, "start": start, "end": end, "confidence": 1.0, "extractor": extractor}


def _phrase_entity(phrase: Phrase, surface: str, start: int, end: int) -> dict[str, Any]:
    entity = _entity(phrase.entity, surface, start, end, RULER_EXTRACTOR)
    if phrase.role:
        entity["role"] = phrase.role
    if phrase.group:
        entity["group"] = phrase.group
    return entity


def _rank(entity: dict[str, Any]) -> tuple[float, int, int]:
    priority = float(_PRIORITY.get(entity["extractor"], 0))
    if entity["extractor"] == builtin_entities.EXTRACTOR:
        sub = _BARE_ORDER_PRIORITY if entity.get("_bare") else _BUILTIN_PRIORITY.get(entity["entity"], 0)
        priority += sub / 10
    return (-priority, -(entity["end"] - entity["start"]), entity["start"])


def _resolve_overlaps(candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the strongest, then longest span wherever spans overlap; the result is in text order."""
    kept: list[dict[str, Any]] = []
    for entity in sorted(candidates, key=_rank):
        if all(entity["end"] <= k["start"] or entity["start"] >= k["end"] for k in kept):
            kept.append(entity)
    for entity in kept:
        entity.pop("_bare", None)
    return sorted(kept, key=lambda e: (e["start"], e["end"]))
