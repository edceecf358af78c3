"""Pick a response variation from the domain: conditional variations (e.g. on the `language` slot) first."""

from __future__ import annotations

import random
import re
from typing import Any

from bot.formats.domain import Domain

_TEMPLATE_VAR = re.compile(r"\{(\w+)\}")


def _condition_holds(condition: list[dict[str, Any]], slots: dict[str, Any]) -> bool:
    for item in condition:
        if item.get("type", "slot") != "slot":
            return False
        actual = slots.get(item.get("name"))
        expected = item.get("value")
        if expected is None:
            if actual is not None:
                return False
        elif str(actual).lower() != str(expected).lower():
            return False
    return True


def choose_variation(variations: list[dict[str, Any]], slots: dict[str, Any], channel: str | None = None,
                     rng: random.Random | None = None) -> dict[str, Any] | None:
    """Rasa's rule: variations whose conditions hold win over those without conditions."""
    usable = [v for v in variations if not v.get("channel") or v.get("channel") == channel]
    conditional = [v for v in usable if v.get("condition") and _condition_holds(v["condition"], slots)]
    plain = [v for v in usable if not v.get("condition")]
    pool = conditional or plain
    if not pool:
        return None
    return (rng or random).choice(pool)


def fill(text: str, slots: dict[str, Any], extra: dict[str, Any] | None = None) -> str:
    """Replace `{slot}` with slot values, leaving unknown names as they are (like Rasa)."""
    values = {**slots, **(extra or {})}

    def sub(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        return match.group(0) if value is None else str(value)

    return _TEMPLATE_VAR.sub(sub, text).replace("{{", "{").replace("}}", "}")


def render(domain: Domain, name: str, slots: dict[str, Any], channel: str | None = None,
           extra: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """A bot message (`text` + `data`) for response `name`, or None if the domain has no such response."""
    variations = domain.responses.get(name)
    if not variations:
        return None
    chosen = choose_variation(variations, slots, channel)
    if chosen is None:
        return None
    text = fill(chosen["text"], slots, extra) if chosen.get("text") else None
    data = {k: v for k, v in chosen.items() if k not in ("text", "condition", "channel", "id")}
    if "buttons" in data:
        data["buttons"] = [{**b, "title": fill(str(b.get("title", "")), slots, extra),
                            "payload": fill(str(b.get("payload", "")), slots, extra)} for b in data["buttons"]]
    return {"text": text, "data": data}
