"""The NLU half of "should the bot answer or fall back / escalate": one reason, or None to go ahead."""

from __future__ import annotations

from typing import Any

LOW_CONFIDENCE = "low_intent_confidence"
SMALL_MARGIN = "small_margin"


def rejection_reason(parse: dict[str, Any], thresholds: Any) -> str | None:
    """"low_intent_confidence" if the top intent's confidence < thresholds.intent (or there is no intent),
    "small_margin" if top-1 minus top-2 < thresholds.ambiguity, else None.

    `thresholds` is bot.config.Thresholds (anything with `intent` and `ambiguity` attributes).
    """
    intent = parse.get("intent") or {}
    top = float(intent.get("confidence") or 0.0)
    if intent.get("name") is None or top < thresholds.intent:
        return LOW_CONFIDENCE
    ranking = parse.get("intent_ranking") or []
    others = [float(r.get("confidence") or 0.0) for r in ranking if r.get("name") != intent.get("name")]
    second = max(others, default=0.0)
    if top - second < thresholds.ambiguity:
        return SMALL_MARGIN
    return None
