"""What a change would do, before it is published: the project's test questions (NLU test data and test stories in
tests/, Rasa's formats: `faq/<id>` or a following `utter_faq/<id>` names the entry a question should get, a request
for a person or an out-of-scope question should get none) and the last real questions, replayed against the
FAQ as it is and as it would be. A blind held-out set (kefu's own tests/heldout/) is never read here: a set an
editor tunes against stops being held out.

For each question: which entry answers it now and after the change (an entry "answers" when its calibrated
score reaches `thresholds.faq`, as in the bot), so the editor sees the answers that change, the questions newly
answered, and those no longer answered. Loudest: a question after which the shopper asked for a person (or that
asked for one itself) that the bot would now answer on its own — people who wanted a person would get the bot.
This replays the FAQ search, not whole conversations (forms, rules and the intent classifier are not rerun).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.dialogue import events as ev
from bot.dialogue.escalation import is_explicit_human_request
from bot.formats.nlu_data import parse_nlu
from bot.formats.yaml_io import load_yaml
from bot.knowledge.gaps import OUT_OF_SCOPE
from bot.language import detect_language
from bot.stores import TrackerStore
from bot.story_tests import load_test_stories

RECENT = 200  # real questions replayed
NEAR = 0.4  # cosine to a changed entry's text from which a question is searched again
MAX_CONVERSATIONS = 400


@dataclass
class Asked:
    text: str
    language: str
    then_person: bool  # the shopper asked for a person in it, or right after (before asking anything else)
    expected: str | None = None  # a test question's entry (None: none should answer it)
    test: bool = False


NO_ENTRY = ("human_handoff", OUT_OF_SCOPE)  # labelled questions no FAQ entry should answer


def project_questions(project_dir: Path) -> list[Asked]:
    """The project's labelled questions in its tests/ folder, in Rasa's formats: NLU test data (`faq/<id>` names
    the entry, as Rasa writes a retrieval intent) and the user turns of test stories followed by `utter_faq/<id>`;
    a request for a person or an out-of-scope question should get no entry."""
    tests = project_dir / "tests"
    if not tests.is_dir():
        return []
    labelled: list[tuple[str, str | None, str]] = []  # (text, entry or None, intent)
    for file in sorted(tests.glob("nlu*.y*ml")):  # tests/nlu*.yml (bots kept below tests/ have their own)
        content = load_yaml(file)
        for example in parse_nlu(content.get("nlu") if isinstance(content, dict) else None, str(file)).examples:
            labelled.append((example.text, example.intent.partition("/")[2] or None, example.intent))
    for story in load_test_stories(tests):
        for step, following in zip(story.steps, [*story.steps[1:], None], strict=True):
            if step.kind == "user" and step.text:
                answer = (following.action or "") if following is not None and following.kind == "action" else ""
                entry = answer.split("/", 1)[1] if answer.startswith("utter_faq/") else None
                labelled.append((step.text.strip(), entry, step.intent or ""))
    return [Asked(text, detect_language(text), intent == "human_handoff", entry, test=True)
            for text, entry, intent in labelled if entry or intent in NO_ENTRY]


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
