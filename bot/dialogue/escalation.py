"""The escalation decision: one reason, the bot's best guesses, and when a person should take over.

Reasons (in the order they are checked): explicit_request, complaint, low_faq_score, small_faq_margin,
low_intent_confidence, small_margin, repeated_fallback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bot.config import KefuSettings, Thresholds

FAQ_INTENT = "faq"  # the intent data/faq.yml's phrasings train

# A safety net under the classifier: a request for a person is always recognised. Strong phrasings count
# even inside a question; weak ones ("真人", "human") not when the shopper asks what the bot is.
_STRONG_REQUEST = re.compile(
    r"转人工|找人工|要人工|接人工|转接|人工客服|人工服务|人工坐席|找客服|叫.{0,4}经理|(我要|找|要|换).{0,3}(真人|活人|客服)"
    r"|不(想|要|愿意)(再)?(和|跟|同)?机器人|别(再)?(让)?机器人|不要(再)?自动回复"
    r"|\b(talk|speak|chat|connect|transfer|put)\w*\b.{0,20}\b(human|person|agent|someone|somebody|representative"
    r"|reps?|operator|staff|manager|people|employee|customer (service|support|care))\b"
    r"|\b(human|live|real)\s+(agent|support|operator|representative)\b"
    r"|\b(human|agent|representative|operator)\s*(please|pls|plz|now|!)",
    re.IGNORECASE,
)
_WEAK_REQUEST = re.compile(
    r"真人|活人|人工(?!智能)|\breal (person|human)\b|^\W*(human|agent|representative|operator|person)\W*$",
    re.IGNORECASE,
)
# "Are you a real person?" asks what the bot is; it is not a request for one.
_IDENTITY_QUESTION = re.compile(
    r"^\W*(am i|are you|r u|is this|is it|is that)\b|你是|是不是|真人吗|人工还是|还是机器人|是机器人",
    re.IGNORECASE,
)


# "人工客服几点上班" asks when people are there (a FAQ), not for one now.
_HOURS_QUESTION = re.compile(r"(人工|客服)[^，。,.!！?？]{0,6}(几点|什么时候|何时|上班|下班|时间|营业)")
_ASKS_NOW = re.compile(r"转人工|找人工|要人工|我要|找客服")
_ENGLISH_IDENTITY = re.compile(r"^\W*(am i|are you|r u|is this|is it|is that)\b(?!.*\b(connect|transfer)\b)", re.I)


def is_explicit_human_request(text: str) -> bool:
    text = text or ""
    if _HOURS_QUESTION.search(text) and not _ASKS_NOW.search(text):
        return False
    if _STRONG_REQUEST.search(text) and not _ENGLISH_IDENTITY.search(text):
        return True
    return bool(_WEAK_REQUEST.search(text)) and not _IDENTITY_QUESTION.search(text)


@dataclass
class Assessment:
    """What the bot makes of one message, before policies run."""

    intent: str | None
    confidence: float
    nlu_reason: str | None = None  # low_intent_confidence | small_margin
    faq_reason: str | None = None  # low_faq_score | small_faq_margin
    explicit_request: bool = False
    complaint: bool = False
    candidates: list[dict[str, Any]] = field(default_factory=list)

    @property
    def nlu_confident(self) -> bool:
        return self.nlu_reason is None

    @property
    def faq_confident(self) -> bool:
        return self.faq_reason is None

    @property
    def says_faq(self) -> bool:
        """The intent classifier is confident this is a question for the FAQ."""
        return self.intent == FAQ_INTENT and self.nlu_confident


def nlu_rejection(parse: dict[str, Any], thresholds: Thresholds) -> str | None:
    ranking = parse.get("intent_ranking") or []
    top = (parse.get("intent") or {}).get("confidence", 0.0) or 0.0
    if not (parse.get("intent") or {}).get("name"):
        return "low_intent_confidence"
    if top < thresholds.intent:
        return "low_intent_confidence"
    if len(ranking) > 1 and top - (ranking[1].get("confidence") or 0.0) < thresholds.ambiguity:
        return "small_margin"
    return None


def faq_threshold(thresholds: Thresholds, intent_says_faq: bool) -> float:
    """The FAQ score needed to answer: lower when the intent classifier, a second opinion, is sure it is a FAQ."""
    if intent_says_faq and thresholds.faq_with_intent is not None:
        return min(thresholds.faq, thresholds.faq_with_intent)
    return thresholds.faq


def faq_rejection(hits: list[dict[str, Any]], thresholds: Thresholds, intent_says_faq: bool = False) -> str | None:
    if not hits or hits[0]["score"] < faq_threshold(thresholds, intent_says_faq):
        return "low_faq_score"
    if len(hits) > 1 and hits[1]["id"] != hits[0]["id"] and hits[0]["score"] - hits[1]["score"] < thresholds.faq_margin:
        return "small_faq_margin"
    return None


def candidates(parse: dict[str, Any], hits: list[dict[str, Any]], k: int = 3) -> list[dict[str, Any]]:
    """The bot's top guesses for the agent: FAQ answers first, then intents, each with a score."""
    out = [
        {"kind": "faq", "id": h["id"], "text": h["answer"], "question": h.get("question"),
         "score": round(h["score"], 4)}
        for h in hits[:k]
    ]
    for item in (parse.get("intent_ranking") or [])[: k - len(out)]:
        out.append({"kind": "intent", "id": item["name"], "text": None, "score": round(item["confidence"], 4)})
    return out


def assess(parse: dict[str, Any], hits: list[dict[str, Any]], settings: KefuSettings, thresholds: Thresholds,
           text: str) -> Assessment:
    intent = (parse.get("intent") or {}).get("name")
    confidence = float((parse.get("intent") or {}).get("confidence") or 0.0)
    nlu_reason = nlu_rejection(parse, thresholds)
    explicit = is_explicit_human_request(text) or (intent in settings.human_request_intents and nlu_reason is None)
    assessment = Assessment(
        intent=intent,
        confidence=confidence,
        nlu_reason=nlu_reason,
        explicit_request=explicit,
        complaint=intent in settings.complaint_intents and nlu_reason is None,
        candidates=candidates(parse, hits),
    )
    assessment.faq_reason = faq_rejection(hits, thresholds, assessment.says_faq)
    return assessment
