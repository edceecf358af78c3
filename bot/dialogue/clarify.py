"""Asking back instead of guessing: "Do you mean …?" with the likely FAQ entries as buttons (Rasa's two-stage
fallback, for answers), and what happens when a shopper says an answer was not what they asked.

A button sends `/faq{"faq_id": "<entry>"}`: the bot answers that entry, in the conversation's language, without
guessing again. A shopper who rejects an answer ("不是这个", "that's not what I asked") gets the other likely
entries of their question, or a person when there are none; the rejected answer is recorded on the bot's reply
(`data.rejected_faq_id`) so statistics count it as a miss.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from bot.dialogue import events as ev
from bot.language import mainland_chinese

FAQ_ID = "faq_id"  # the entity a clarification button carries
CLARIFY_ACTION = "action_two_stage_fallback"

_REJECTION = re.compile(
    r"^\W*(不是(这个|这样|我要问的|我问的)|不对|答非所问|没回答|你没(懂|明白)|文不对题|牛头不对马嘴|说的不是"
    r"|(that'?s |this is |it'?s )?not what i (asked|meant|wanted)|(that'?s )?not (it|that|helpful|relevant)"
    r"|wrong answer|(that |this )?(doesn'?t|does not|didn'?t) (answer|help)"
    r"|you (didn'?t|don'?t) (get|understand) (it|me)"
    r"|no,? (that'?s|this is) not)",
    re.IGNORECASE,
)


def is_rejection(text: str) -> bool:
    """The shopper says the answer they just got is not what they asked."""
    return bool(_REJECTION.search(mainland_chinese(text or "")))


def button(entry_id: str, title: str) -> dict[str, str]:
    return {"title": title, "payload": "/faq" + json.dumps({FAQ_ID: entry_id}, ensure_ascii=False)}


def chosen_entry(parse: dict[str, Any]) -> str | None:
    """The FAQ entry a clarification button chose (`/faq{"faq_id": …}`), if this message is such a press."""
    for entity in parse.get("entities") or []:
        if entity.get("entity") == FAQ_ID and entity.get("extractor") == "payload":
            return str(entity.get("value"))
    return None


def last_answer(events: list[ev.Event]) -> tuple[str, list[dict[str, Any]]] | None:
    """(entry id, that question's FAQ hits) when the bot's last message before this user turn answered a FAQ."""
    answered = None
    for event in reversed(events):
        kind = event.get("event")
        if kind == "bot" and answered is None:
            faq_id = (event.get("data") or {}).get("faq_id")
            if not faq_id:
                return None
            answered = faq_id
        elif kind == "user" and answered is not None:
            return answered, (event.get("parse_data") or {}).get("faq") or []
    return None


def offer(hits: list[dict[str, Any]], title: Callable[[dict[str, Any]], str]) -> list[dict[str, str]]:
    return [button(hit["id"], title(hit)) for hit in hits]
