"""What a change would do, before it is published: the project's test questions (tests/heldout/*.csv: faq, human
and oos, with the entry each should get) and the last real questions, replayed against the FAQ as it is and as it
would be.

For each question: which entry answers it now and after the change (an entry "answers" when its calibrated
score reaches `thresholds.faq`, as in the bot), so the editor sees the answers that change, the questions newly
answered, and those no longer answered. Loudest: a question after which the shopper asked for a person (or that
asked for one itself) that the bot would now answer on its own — people who wanted a person would get the bot.
This replays the FAQ search, not whole conversations (forms, rules and the intent classifier are not rerun).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.dialogue import events as ev
from bot.dialogue.escalation import is_explicit_human_request
from bot.language import detect_language
from bot.stores import TrackerStore

RECENT = 200  # real questions replayed
NEAR = 0.4  # cosine to a changed entry's text from which a question is searched again
MAX_CONVERSATIONS = 400


HELDOUT = ("faq", "human", "oos")  # tests/heldout/<kind>_<language>.csv: text,label[,style]


@dataclass
class Asked:
    text: str
    language: str
    then_person: bool  # the shopper asked for a person in it, or right after (before asking anything else)
    expected: str | None = None  # a test question's entry (None: none should answer it)
    test: bool = False


def project_questions(project_dir: Path) -> list[Asked]:
    """The project's labelled test questions, if it keeps them where kefu's own are (tests/heldout/)."""
    found = []
    for kind in HELDOUT:
        for language in ("zh", "en"):
            path = project_dir / "tests" / "heldout" / f"{kind}_{language}.csv"
            if not path.is_file():
                continue
            with path.open(encoding="utf-8", newline="") as f:
                for row in csv.DictReader(f):
                    if row.get("text"):
                        found.append(Asked(row["text"], language, kind == "human",
                                           row.get("label") if kind == "faq" else None, test=True))
    return found


async def recent_questions(trackers: TrackerStore, limit: int = RECENT) -> list[Asked]:
    """The latest distinct shopper questions, newest conversations first."""
    found: dict[str, Asked] = {}
    for row in await trackers.conversations(limit=MAX_CONVERSATIONS):
        events = await trackers.events(row["conversation_id"])
        for i, event in enumerate(events):
            text = str(event.get("text") or "") if event.get("event") == "user" else ""
            if not text or text.startswith("/"):
                continue
            after = events[i + 1:]
            # until the shopper's next message that is not just "a person, please"
            end = next((j for j, e in enumerate(after) if e.get("event") == "user"
                        and not is_explicit_human_request(str(e.get("text") or ""))), len(after))
            person = is_explicit_human_request(text) or any(e.get("event") == ev.HANDOFF_REQUESTED
                                                            for e in after[:end])
            language = str((event.get("parse_data") or {}).get("language") or detect_language(text))
            known = found.get(text)
            found[text] = Asked(text, language, person or (known.then_person if known else False))
        if len(found) >= limit:
            break
    return list(found.values())[:limit]


def compare(before: Any, after: Any, asked: list[Asked], threshold: float, changed: set[str],
            embedder: Any) -> dict[str, Any]:
    """The answers that differ between two FAQ indexes (bot.faq.index.FAQIndex) whose entries differ in
    `changed`. Blocking: off the loop.

    A full search costs ~50 ms a question, so only the questions the change can reach are searched: those
    within NEAR (cosine) of any text of a changed entry, as it was or as it will be. The others keep their answer
    (their entries and everything near them are unchanged)."""
    texts = [a.text for a in asked]
    near = np.concatenate([before.vectors_of(changed), after.vectors_of(changed)])
    if texts and len(near):
        vectors = np.asarray(embedder.encode(texts), dtype=np.float32)
        reached = [a for a, score in zip(asked, (vectors @ near.T).max(axis=1), strict=True) if score >= NEAR]
    else:
        reached = []
    texts, languages = [a.text for a in reached], [a.language for a in reached]
    old = before.search_batch(texts, languages, k=1) if texts else []
    new = after.search_batch(texts, languages, k=1) if texts else []
    changes = []
    for question, was, now in zip(reached, old, new, strict=True):
        was_id = was[0].id if was and was[0].score >= threshold else None
        now_id = now[0].id if now and now[0].score >= threshold else None
        if was_id == now_id and (now_id is None or was[0].answer == now[0].answer):
            continue
        changes.append({"question": question.text, "before": was_id, "after": now_id,
                        "answer": now[0].answer if now_id else None, "test": question.test,
                        "expected": question.expected,
                        "person_wanted": question.then_person and now_id is not None and was_id is None})
    return {
        "replayed": len(asked),
        "searched": len(reached),
        "test_questions": sum(1 for a in asked if a.test),
        "test_regressions": [c["question"] for c in changes
                             if c["test"] and c["before"] == c["expected"] and c["after"] != c["expected"]],
        "changed": changes,
        "newly_answered": sum(1 for c in changes if c["before"] is None),
        "no_longer_answered": sum(1 for c in changes if c["after"] is None),
        "person_wanted_now_bot": [c["question"] for c in changes if c["person_wanted"]],
    }
