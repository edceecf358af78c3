"""FAQ entries: our `data/faq.yml` and Rasa retrieval intents (`faq/…` examples + `utter_faq/…` responses)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.formats.yaml_io import DataError, line_of

LANGUAGES = ("zh", "en")


@dataclass
class FAQEntry:
    id: str
    category: str = ""
    tags: list[str] = field(default_factory=list)
    questions: dict[str, list[str]] = field(default_factory=dict)  # language -> phrasings
    answers: dict[str, str] = field(default_factory=dict)  # language -> answer text
    source: str = ""
    titles: dict[str, str] = field(default_factory=dict)  # language -> display title (optional)

    def answer(self, language: str) -> str:
        """The answer in `language`, else in the other language, so there is always one."""
        return self.answers.get(language) or next(iter(self.answers.values()), "")

    def title(self, language: str) -> str:
        """What shoppers see as the entry's heading or button: its display title, else its first phrasing (entries
        without titles: Rasa retrieval intents, older files), in `language` if it has one."""
        first_phrasing = {lang: phrasings[0] for lang, phrasings in self.questions.items() if phrasings}
        for texts in (self.titles, first_phrasing):
            if texts.get(language):
                return texts[language]
        return next(iter([*self.titles.values(), *first_phrasing.values()]), self.id)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "category": self.category, "tags": self.tags,
                "questions": self.questions, "answers": self.answers, "titles": self.titles}


def parse_faq(data: Any, path: str) -> list[FAQEntry]:
    """Parse the list under a file's `faq:` key."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise DataError("'faq' must be a list of entries (- id: …)", path, line_of(data))
    entries: list[FAQEntry] = []
    seen: dict[str, int | None] = {}
    for item in data:
        line = line_of(item)
        if not isinstance(item, dict) or not item.get("id"):
            raise DataError("each FAQ entry needs an 'id'", path, line)
        entry_id = str(item["id"])
        if entry_id in seen:
            raise DataError(f"FAQ id {entry_id!r} is used twice (first on line {seen[entry_id]})", path, line)
        seen[entry_id] = line
        questions = item.get("questions") or {}
        answers = item.get("answer", item.get("answers")) or {}
        if isinstance(questions, list):  # language-neutral list
            questions = {"any": questions}
        if isinstance(answers, str):
            answers = {lang: answers for lang in LANGUAGES}
        if not isinstance(questions, dict) or not any(questions.values()):
            raise DataError(f"FAQ {entry_id!r} needs 'questions' (zh: [...], en: [...])", path, line)
        if not isinstance(answers, dict) or not any(answers.values()):
            raise DataError(f"FAQ {entry_id!r} needs an 'answer' (zh: …, en: …)", path, line)
        for lang, phrasings in questions.items():
            if not isinstance(phrasings, list) or not all(isinstance(q, str) for q in phrasings):
                raise DataError(f"FAQ {entry_id!r}: questions.{lang} must be a list of strings", path,
                                line_of(phrasings) or line)
        titles = _titles(item.get("title"), [str(lang) for lang, text in answers.items() if text], entry_id, path,
                         line)
        if item.get("disabled") is True:  # kept in the file (the console's "disable"), not answered from
            continue
        entries.append(
            FAQEntry(
                id=entry_id,
                category=str(item.get("category", "")),
                tags=[str(t) for t in item.get("tags") or []],
                questions={str(k): [str(q).strip() for q in v if str(q).strip()] for k, v in questions.items()},
                answers={str(k): str(v).strip() for k, v in answers.items() if v},
                source=f"{path}:{line}",
                titles=titles,
            )
        )
    return entries


def _titles(raw: Any, languages: list[str], entry_id: str, path: str, line: int | None) -> dict[str, str]:
    """An entry's optional `title: {en: …, zh: …}`: when given, one for every language the entry answers in."""
    if raw is None:
        return {}
    where = line_of(raw) or line
    example = ", ".join(f"{lang}: …" for lang in languages)
    if not isinstance(raw, dict) or not all(isinstance(v, str) and v.strip() for v in raw.values()):
        raise DataError(f"FAQ {entry_id!r}: 'title' must give a short title per language ({{{example}}})", path, where)
    missing = [lang for lang in languages if lang not in raw]
    if missing:
        raise DataError(f"FAQ {entry_id!r}: 'title' has no {' or '.join(missing)} title, but the entry answers in "
                        f"{' and '.join(languages)} ({{{example}}})", path, where)
    return {str(lang): text.strip() for lang, text in raw.items()}


def entries_from_retrieval_intents(
    examples: list[tuple[str, str]], responses: dict[str, list[dict[str, Any]]], detect_language
) -> list[FAQEntry]:
    """FAQ entries for Rasa retrieval intents: `examples` are (full_intent, text) pairs like ("faq/hours", "…")."""
    by_key: dict[str, FAQEntry] = {}
    for full_intent, text in examples:
        if "/" not in full_intent:
            continue
        base, _key = full_intent.split("/", 1)
        entry = by_key.setdefault(full_intent, FAQEntry(id=full_intent, category=base))
        entry.questions.setdefault(detect_language(text), []).append(text)
    for full_intent, entry in by_key.items():
        for variation in responses.get(f"utter_{full_intent}", []):
            text = variation.get("text")
            if not text:
                continue
            language = next(
                (str(c.get("value")) for c in variation.get("condition") or []
                 if c.get("name") == "language"),
                None,
            )
            for lang in [language] if language else LANGUAGES:
                entry.answers.setdefault(lang, text)
    return [e for e in by_key.values() if e.answers]
