"""What a change would do, before it is published: the last real questions replayed against the FAQ as it is and
as it would be.

For each question: which entry answers it now and after the change (an entry "answers" when its calibrated
score reaches `thresholds.faq`, as in the bot), so the editor sees the answers that change, the questions newly
answered, and those no longer answered. Loudest: a question after which the shopper asked for a person (or that
asked for one itself) that the bot would now answer on its own — people who wanted a person would get the bot.
This replays the FAQ search, not whole conversations (forms, rules and the intent classifier are not rerun).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.dialogue import events as ev
from bot.dialogue.escalation import is_explicit_human_request
from bot.language import detect_language
from bot.stores import TrackerStore

RECENT = 200  # real questions replayed
MAX_CONVERSATIONS = 400


@dataclass
class Asked:
    text: str
    language: str
    then_person: bool  # the shopper asked for a person in it, or right after (before asking anything else)


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


def compare(before: Any, after: Any, asked: list[Asked], threshold: float) -> dict[str, Any]:
    """The answers that differ between two FAQ indexes (bot.faq.index.FAQIndex). Blocking: off the loop."""
    texts, languages = [a.text for a in asked], [a.language for a in asked]
    old = before.search_batch(texts, languages, k=1) if texts else []
    new = after.search_batch(texts, languages, k=1) if texts else []
    changes = []
    for question, was, now in zip(asked, old, new, strict=True):
        was_id = was[0].id if was and was[0].score >= threshold else None
        now_id = now[0].id if now and now[0].score >= threshold else None
        if was_id == now_id and (now_id is None or was[0].answer == now[0].answer):
            continue
        changes.append({"question": question.text, "before": was_id, "after": now_id,
                        "answer": now[0].answer if now_id else None,
                        "person_wanted": question.then_person and now_id is not None and was_id is None})
    return {
        "replayed": len(asked),
        "changed": changes,
        "newly_answered": sum(1 for c in changes if c["before"] is None),
        "no_longer_answered": sum(1 for c in changes if c["after"] is None),
        "person_wanted_now_bot": [c["question"] for c in changes if c["person_wanted"]],
    }
