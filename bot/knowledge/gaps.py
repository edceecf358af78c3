"""What the bot could not answer, grouped by meaning, turned into FAQ changes.

An unanswered question: a shopper message after which the bot fell back ("sorry, I didn't get that", "do you
mean …?") or handed over because nothing matched (the reasons in handoff/stats.py's UNANSWERED_REASONS), that
the shopper said was answered wrongly, or that the bot declined as not the shop's business (Rasa's
`out_of_scope` intent): the owner may decide it is ("can I bring my dog into your shop?"). What the agents then
wrote in that conversation (their replies, until the handoff ended) is kept with it: the best source for a new
entry's answer.

Grouping: the questions are embedded by the bot's own encoders and clustered (agglomerative, average linkage,
cosine distance below GROUP_DISTANCE); a Chinese and an English question never share a group (each language has
its own vector block, see bot/nlu/embedder.py). Largest groups first. For each group the live FAQ suggests the
entry its questions come closest to ("add them as phrasings of …"), and a draft entry is prefilled with the
group's questions and the agents' most frequent reply.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bot.dialogue import events as ev
from bot.dialogue.tracker import ACTION_LISTEN
from bot.language import detect_language
from bot.stores import TrackerStore

UNANSWERED_REASONS = {"low_intent_confidence", "small_margin", "low_faq_score", "small_faq_margin",
                      "repeated_fallback", "rejected_answer"}
GAVE_UP = {"action_default_fallback", "action_two_stage_fallback"}
OUT_OF_SCOPE = "out_of_scope"
GROUP_DISTANCE = 0.45  # cosine distance: phrasings of one question sit below, different questions above
MAX_CONVERSATIONS = 5000
MAX_GROUPS = 30
_NORMALISE = re.compile(r"[\s\W_]+")


@dataclass
class Gap:
    question: str
    at: float
    conversation_id: str
    replies: list[str] = field(default_factory=list)


def _gaps_of(conversation_id: str, events: list[ev.Event], since: float) -> list[Gap]:
    gaps: list[Gap] = []
    question: ev.Event | None = None  # the shopper's latest question, until the bot answers or gives up
    waiting: list[Gap] = []  # gaps a person may still answer in this conversation
    declined = False  # the latest question was out of scope: a gap unless the turn answers it after all
    for event in events:
        kind = event.get("event")
        if kind == "user":
            text = str(event.get("text") or "")
            question = event if text and not text.startswith("/") else None
            declined = ((event.get("parse_data") or {}).get("intent") or {}).get("name") == OUT_OF_SCOPE
        elif kind == "bot" and (event.get("data") or {}).get("faq_id"):
            question = None
        elif question is not None and ((kind == "action" and event.get("name") in GAVE_UP) or (
                kind == ev.HANDOFF_REQUESTED and event.get("reason") in UNANSWERED_REASONS) or (
                declined and kind == "action" and event.get("name") == ACTION_LISTEN)):
            if float(question.get("timestamp") or 0) >= since:
                gap = Gap(str(question["text"]), float(question.get("timestamp") or 0), conversation_id)
                gaps.append(gap)
                waiting.append(gap)
            question = None
        elif kind == ev.AGENT_MESSAGE and event.get("text"):
            for gap in waiting:
                gap.replies.append(str(event["text"]))
        elif kind == ev.HANDOFF_ENDED:
            waiting = []
    return gaps


async def collect(trackers: TrackerStore, days: float = 30, now: float | None = None) -> list[Gap]:
    since = (time.time() if now is None else now) - days * 86400
    found: list[Gap] = []
    offset, page = 0, 200
    while offset < MAX_CONVERSATIONS:
        rows = await trackers.conversations(limit=page, offset=offset)
        recent = [r for r in rows if float(r["updated_at"]) >= since]
        for row in recent:
            found += _gaps_of(row["conversation_id"], await trackers.events(row["conversation_id"]), since)
        if len(rows) < page or len(recent) < len(rows):
            break
        offset += page
    return found


def group(gaps: list[Gap], embedder: Any, index: Any) -> list[dict[str, Any]]:
    """Groups of gaps by meaning, largest first, each with the FAQ entry it is closest to and a draft entry.
    Blocking (embeds and searches): run it off the event loop."""
    if not gaps:
        return []
    by_wording: dict[str, list[Gap]] = {}
    for gap in gaps:
        by_wording.setdefault(_NORMALISE.sub(" ", gap.question.lower()).strip(), []).append(gap)
    wordings = list(by_wording)
    texts = [by_wording[w][0].question for w in wordings]
    vectors = np.asarray(embedder.encode(texts), dtype=np.float32)
    if len(texts) == 1:
        labels = np.zeros(1, dtype=int)
    else:
        from sklearn.cluster import AgglomerativeClustering  # here: serving processes that never group load less

        labels = AgglomerativeClustering(n_clusters=None, distance_threshold=GROUP_DISTANCE, metric="cosine",
                                         linkage="average").fit_predict(vectors)
    clusters: dict[int, list[str]] = {}
    for wording, label in zip(wordings, labels, strict=True):
        clusters.setdefault(int(label), []).append(wording)
    groups = []
    for members in clusters.values():
        members.sort(key=lambda w: -len(by_wording[w]))
        questions = [by_wording[w][0].question for w in members]
        count = sum(len(by_wording[w]) for w in members)
        replies = Counter(r for w in members for g in by_wording[w] for r in g.replies)
        language = Counter(detect_language(q) for q in questions).most_common(1)[0][0]
        groups.append({"count": count, "language": language, "questions": questions,
                       "conversations": sorted({g.conversation_id for w in members for g in by_wording[w]}),
                       "replies": [text for text, _ in replies.most_common(5)],
                       "suggested": _closest_entry(questions, language, index)})
    groups.sort(key=lambda g: (-g["count"], g["questions"][0]))
    for n, found in enumerate(groups[:MAX_GROUPS], 1):
        found["draft"] = _draft(found, n, index)
    return groups[:MAX_GROUPS]


def _closest_entry(questions: list[str], language: str, index: Any) -> dict[str, Any] | None:
    """The entry the group's questions come closest to (summed calibrated scores), for "add as phrasings"."""
    if not len(index):
        return None
    totals: Counter[str] = Counter()
    for hits in index.search_batch(questions, [language] * len(questions), k=3):
        for hit in hits:
            totals[hit.id] += hit.score
    if not totals:
        return None
    best, total = totals.most_common(1)[0]
    entry = index.entries[best]
    return {"id": best, "title": entry.title(language), "score": round(total / len(questions), 4)}


def _draft(found: dict[str, Any], n: int, index: Any) -> dict[str, Any]:
    """A new entry prefilled from the group: its questions, and what agents answered (in its language)."""
    language = found["language"]
    other = "en" if language == "zh" else "zh"
    suggested = found["suggested"]
    category = index.entries[suggested["id"]].category if suggested else ""
    words = re.findall(r"[a-z]+", found["questions"][0].lower())[:4] if language == "en" else []
    draft_id = "_".join(words) if words else f"new_question_{n}"
    return {"id": draft_id, "category": category,
            "questions": {language: found["questions"][:20], other: []},
            "answer": {language: found["replies"][0] if found["replies"] else "", other: ""}}
