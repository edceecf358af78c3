"""An FAQ entry as editors give it (the console's JSON, an imported YAML): data/faq.yml's item format, read by
the same parser as `kefu train` and `kefu data validate`, and held to what the bot needs to answer in both
languages. Look-alike questions are a warning, not an error: the editor decides.
"""

from __future__ import annotations

import re
from typing import Any

from bot.formats.faq_data import LANGUAGES, parse_faq
from bot.formats.yaml_io import DataError
from bot.knowledge.versions import LiveEntry

ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,63}$")
LOOK_ALIKE = 0.9  # a question the live index gives another entry with this calibrated score reads like that entry
MAX_QUESTIONS = 300
MAX_TEXT = 2000
MAX_NAME = 64
MAX_TAGS = 50


def parse_entry(item: Any, where: str = "entry") -> LiveEntry:
    """One entry in data/faq.yml's item format (`disabled: true` keeps it without answering from it); DataError
    says what is wrong."""
    if not isinstance(item, dict):
        raise DataError("an entry is an object with id, category, title, tags, questions and answer", where)
    disabled = item.get("disabled", False)
    if not isinstance(disabled, bool):
        raise DataError("'disabled' must be true or false", where)
    entry_id = item.get("id")
    if not isinstance(entry_id, str) or not ID.match(entry_id):
        raise DataError("'id' must be 1–64 letters, digits or _ . / - (it names the entry in statistics)", where)
    [entry] = parse_faq([{k: v for k, v in item.items() if k != "disabled"}], where)
    for lang in LANGUAGES:
        if not entry.questions.get(lang):
            raise DataError(f"FAQ {entry_id!r} needs questions in both languages: questions.{lang} is empty", where)
        if not entry.answers.get(lang):
            raise DataError(f"FAQ {entry_id!r} needs an answer in both languages: answer.{lang} is empty", where)
    texts = [q for qs in entry.questions.values() for q in qs]
    if len(texts) > MAX_QUESTIONS:
        raise DataError(f"FAQ {entry_id!r} has {len(texts)} questions; at most {MAX_QUESTIONS}", where)
    if len(entry.category) > MAX_NAME or len(entry.tags) > MAX_TAGS or any(len(t) > MAX_NAME for t in entry.tags):
        raise DataError(f"FAQ {entry_id!r}: a category or tag is at most {MAX_NAME} characters, and an entry has "
                        f"at most {MAX_TAGS} tags", where)
    if any(len(t) > MAX_TEXT for t in [*texts, *entry.answers.values(), *entry.titles.values()]):
        raise DataError(f"FAQ {entry_id!r}: a question or answer is longer than {MAX_TEXT} characters", where)
    if unknown := set(entry.questions) - set(LANGUAGES):
        raise DataError(f"FAQ {entry_id!r}: questions are given per language (zh, en), not {sorted(unknown)}", where)
    return LiveEntry(entry, disabled)


def as_item(live: LiveEntry) -> dict[str, Any]:
    """The entry in data/faq.yml's item format (what `parse_entry` reads), keys in the file's order."""
    entry = live.entry
    item: dict[str, Any] = {"id": entry.id, "category": entry.category}
    if entry.titles:
        item["title"] = {lang: entry.titles[lang] for lang in sorted(entry.titles, key=_language_order)}
    if entry.tags:
        item["tags"] = list(entry.tags)
    item["questions"] = {lang: list(entry.questions[lang]) for lang in sorted(entry.questions, key=_language_order)}
    item["answer"] = {lang: entry.answers[lang] for lang in sorted(entry.answers, key=_language_order)}
    if live.disabled:
        item["disabled"] = True
    return item


def _language_order(lang: str) -> tuple[int, str]:
    return (("en", "zh").index(lang) if lang in ("en", "zh") else 2, lang)


def look_alikes(live: LiveEntry, index: Any, before: LiveEntry | None = None) -> list[str]:
    """Warnings for the entry's new questions (not in `before`, the entry as it was) that the live index
    (bot.faq.index.FAQIndex) would answer with another entry: two entries whose questions read alike confuse
    the search. Blocking: run it off the loop."""
    known = {q for qs in before.entry.questions.values() for q in qs} if before else set()
    asked = [(lang, q) for lang, qs in live.entry.questions.items() for q in qs if q not in known]
    if not asked or not len(index):
        return []
    found = index.search_batch([q for _, q in asked], [lang for lang, _ in asked], k=1)
    warnings = []
    for (_, question), hits in zip(asked, found, strict=True):
        if hits and hits[0].id != live.id and hits[0].score >= LOOK_ALIKE:
            warnings.append(f"“{question}” reads almost like {hits[0].id}'s “{hits[0].question}” "
                            f"(the bot would answer it with {hits[0].id}, {hits[0].score:.0%})")
    return warnings
