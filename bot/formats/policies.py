"""The shop's policies as numbers (`policies:` in data/faq.yml), and the check that every answer states them alike.

A shop's answers repeat its rules — the return window, the free-shipping threshold, the hours — in many places
(FAQ answers, domain responses, agents' canned replies), and a rule changed in one place but not another tells
shoppers two different things. Each policy declares its value and the patterns that find where an answer states
it; `kefu data validate` warns about every answer that states another number, naming both places.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from bot.formats.yaml_io import DataError, line_of, load_yaml, validate

_SENTENCE_END = re.compile(r"(?<=[!?。！？])|(?<=\.)\s+|\n")
_RANGE = re.compile(r"\s*(?:–|—|-|~|～|\bto\b|至|到)\s*")


def normalize(value: Any) -> str:
    """A stated number in one spelling: "1 to 3" and "1-3" → "1–3", "1,000" → "1000", "09:00" → "9:00"."""
    text = re.sub(r"(?<=\d),(?=\d{3})", "", str(value).strip())
    text = _RANGE.sub("–", text)
    text = re.sub(r"(?<![\d:.])0(?=\d)", "", text)
    return re.sub(r"\s+", "", text)


def _regex(pattern: Any) -> re.Pattern[str]:
    if not isinstance(pattern, str) or not pattern:
        raise ValueError("a pattern must be a non-empty string (a regular expression)")
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None


def _number_pattern(pattern: Any) -> re.Pattern[str]:
    compiled = _regex(pattern)
    if compiled.groups != 1:
        raise ValueError(f"{pattern!r} needs exactly one group (…) around the number, it has {compiled.groups}")
    return compiled


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    value: int | float | str | None = None
    unless: re.Pattern[str] | None = None
    en: list[re.Pattern[str]] = []
    zh: list[re.Pattern[str]] = []

    @field_validator("en", "zh", mode="before")
    @classmethod
    def _patterns(cls, value: Any) -> list[re.Pattern[str]]:
        return [_number_pattern(p) for p in ([value] if isinstance(value, str) else value or [])]

    @field_validator("unless", mode="before")
    @classmethod
    def _unless(cls, value: Any) -> re.Pattern[str] | None:
        return None if value is None else _regex(value)


@dataclass(frozen=True)
class Policy:
    key: str
    value: str | None  # normalized; None: the answers only have to agree with each other
    patterns: dict[str, list[re.Pattern[str]]]  # language -> patterns
    unless: re.Pattern[str] | None
    path: str
    line: int | None  # of the declaration

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class ShopText:
    """One answer a shopper can get, and where it is written."""

    text: str
    language: str
    where: str  # "path:line"
    item: str  # "FAQ shipping_cost", "response utter_greet", "canned reply /invoice"


@dataclass(frozen=True)
class Statement:
    value: str
    quote: str
    source: ShopText

    @property
    def place(self) -> str:
        return f"{self.source.where} ({self.source.item}, {self.source.language})"


def parse_policies(data: Any, path: str | Path) -> list[Policy]:
    """The `policies:` mapping of one file; a malformed entry is a DataError with its line."""
    if data is None:
        return []
    if not isinstance(data, dict):
        raise DataError("'policies' must be a mapping of policy name to {value, en, zh, unless}", path, line_of(data))
    policies = []
    for key, raw in data.items():
        line = line_of(key) or line_of(raw) or line_of(data)
        if not isinstance(raw, dict):
            raise DataError(f"policy {key!r} must be a mapping with 'value', 'en' and/or 'zh' patterns", path, line)
        try:
            spec = validate(_Spec, raw, path)
        except DataError as exc:
            raise DataError(f"policy {key!r}: {exc.message}", exc.path, exc.line) from None
        if not spec.en and not spec.zh:
            raise DataError(f"policy {key!r} needs patterns (en: [...], zh: [...]) that find it in answers", path, line)
        policies.append(Policy(str(key), None if spec.value is None else normalize(spec.value),
                               {"en": spec.en, "zh": spec.zh}, spec.unless, str(path), line))
    return policies


def shop_texts(data: Any, path: str | Path) -> Iterator[ShopText]:
    """Every answer in one loaded file: FAQ answers, domain responses, canned replies."""
    from bot.language import detect_language

    if not isinstance(data, dict):
        return
    for entry in data.get("faq") or []:
        answers = entry.get("answer", entry.get("answers")) if isinstance(entry, dict) else None
        if isinstance(answers, str):
            answers = {detect_language(answers): answers}
        for language, text in (answers or {}).items() if isinstance(answers, dict) else ():
            if isinstance(text, str):
                yield ShopText(text, str(language), f"{path}:{line_of(text)}", f"FAQ {entry.get('id')}")
    responses = data.get("responses")
    for name, variations in responses.items() if isinstance(responses, dict) else ():
        for variation in variations if isinstance(variations, list) else ():
            text = variation.get("text") if isinstance(variation, dict) else None
            if isinstance(text, str):
                yield ShopText(text, detect_language(text), f"{path}:{line_of(text)}", f"response {name}")
    for reply in data.get("canned_replies") or []:
        for language in ("en", "zh"):
            text = reply.get(language) if isinstance(reply, dict) else None
            if isinstance(text, str):
                yield ShopText(text, language, f"{path}:{line_of(text)}", f"canned reply /{reply.get('shortcut')}")


def statements(policy: Policy, texts: Iterable[ShopText]) -> list[Statement]:
    """Where the answers state `policy`: one statement per answer and number."""
    found: dict[tuple[ShopText, str], Statement] = {}
    for source in texts:
        for sentence in _SENTENCE_END.split(source.text):
            if policy.unless and policy.unless.search(sentence):
                continue
            for pattern in policy.patterns.get(source.language, []):
                for match in pattern.finditer(sentence):
                    value = normalize(match.group(1))
                    found.setdefault((source, value), Statement(value, _quote(match), source))
    return list(found.values())


def _quote(match: re.Match[str], context: int = 30) -> str:
    """The words around the number a pattern found (a lazy `.*?` can match half a sentence)."""
    start, end = max(match.start(), match.start(1) - context), min(match.end(), match.end(1) + context)
    text = match.string[start:end].strip()
    return ("…" if start > match.start() else "") + text + ("…" if end < match.end() else "")


def conflicts(policy: Policy, texts: list[ShopText]) -> list[str]:
    """Warnings: each answer that states another number than the policy's value (or than most answers)."""
    said = statements(policy, texts)
    if not said:
        stated = f" ({policy.value})" if policy.value else ""
        return [f"{policy.where}: policy {policy.key}{stated}: no answer states it — check its patterns"]
    expected = policy.value or Counter(s.value for s in said).most_common(1)[0][0]
    agreeing = [s for s in said if s.value == expected]
    warnings = []
    for statement in (s for s in said if s.value != expected):
        # the most telling other answer: the same entry in the other language, else one in the same language
        others = [s for s in agreeing if s.source is not statement.source]
        nearest = min(others, default=None, key=lambda s: (s.source.item != statement.source.item,
                                                           s.source.language != statement.source.language))
        parts = [f"the policy says {expected} ({policy.where})"] if policy.value else []
        parts += [f"{nearest.place} says {expected}"] if nearest else []
        reference = " and ".join(parts) or f"the same answer also says {expected}"
        warnings.append(f"{statement.place} states {policy.key} as {statement.value} "
                        f"(\"{statement.quote}\"), but {reference}")
    return warnings


def check_policies(files: Iterable[Path]) -> list[str]:
    """Warnings for every declared policy that the answers in `files` state differently; [] when none."""
    policies: list[Policy] = []
    texts: list[ShopText] = []
    for path in files:
        data = load_yaml(path)
        if not isinstance(data, dict):
            continue
        for policy in parse_policies(data.get("policies"), path):
            first = next((p for p in policies if p.key == policy.key), None)
            if first:
                raise DataError(f"policy {policy.key!r} is declared twice (first at {first.where})",
                                policy.path, policy.line)
            policies.append(policy)
        texts.extend(shop_texts(data, path))
    return [warning for policy in policies for warning in conflicts(policy, texts)]
