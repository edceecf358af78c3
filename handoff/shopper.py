"""Reading the shopper's side of a handoff without the classifier: cancel, a rating, "where is my ticket".

These run before the bot sees a message and only in the situation they belong to (a rating only while one is
asked for, a cancel only while waiting), so short words like "5" or "算了" can't be misread elsewhere. Buttons
send Rasa payloads (`/cancel_handoff`, `/csat{"score": 4}`, `/ticket_status`), which always work.
"""

from __future__ import annotations

import json
import re

from bot.dialogue import events as ev
from bot.dialogue.tracker import Tracker
from bot.notices import text

CANCEL_PAYLOAD = "/cancel_handoff"
TICKET_PAYLOAD = "/ticket_status"
RATING_PAYLOAD = "/csat"

_CANCEL = re.compile(
    r"^(cancel|stop|stop waiting|never ?mind|no thanks|no,? thanks|forget it|don'?t bother|back to (the )?bot"
    r"|取消|取消转人工|不用了|算了|不等了|不要了|不用|退出)$", re.IGNORECASE)
_RATING = re.compile(r"^(?P<n>[1-5一二两三四五])\s*(stars?|/\s*5|分|颗星|星|星好评|分好评)?$", re.IGNORECASE)
_CHINESE_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_TICKET = re.compile(
    r"\bmy (ticket|message|request)s?\b|\bticket (status|number|progress)\b|\bstatus of my (ticket|message)\b"
    r"|工单|留言(进度|处理|状态)|我的留言", re.IGNORECASE)
_TRIM = re.compile(r"^[\s\W_]+|[\s\W_]+$")


def _clean(message: str) -> str:
    return _TRIM.sub("", message or "").strip()


def is_cancel(message: str) -> bool:
    return (message or "").strip() == CANCEL_PAYLOAD or bool(_CANCEL.match(_clean(message)))


def rating_score(message: str) -> int | None:
    """1–5 from `/csat{"score": N}`, "4", "5 stars", "五星", "3分"; None for anything else."""
    message = (message or "").strip()
    if message.startswith(RATING_PAYLOAD):
        try:
            score = json.loads(message[len(RATING_PAYLOAD):] or "{}").get("score")
        except (ValueError, AttributeError):
            return None
        return int(score) if isinstance(score, int | float) and 1 <= score <= 5 and int(score) == score else None
    match = _RATING.match(_clean(message))
    if not match:
        return None
    n = match["n"]
    return _CHINESE_DIGITS.get(n) or int(n)


def asks_ticket_status(message: str) -> bool:
    return (message or "").strip() == TICKET_PAYLOAD or bool(_TICKET.search(message or ""))


def is_payload(message: str) -> bool:
    return (message or "").strip().startswith("/")


# -- where the conversation stands (from its events) -----------------------------------------------------------


def _current_session(tracker: Tracker) -> list[ev.Event]:
    for i in range(len(tracker.events) - 1, -1, -1):
        if tracker.events[i].get("event") in ("session_started", "restart"):
            return tracker.events[i + 1 :]
    return tracker.events


def rating_pending(tracker: Tracker) -> bool:
    """The bot asked for a rating and the shopper has not written since."""
    for event in reversed(_current_session(tracker)):
        kind = event.get("event")
        if kind in ("user", ev.CSAT):
            return False
        if kind == "bot" and (event.get("data") or {}).get("rating_request"):
            return True
    return False


def unavailable_pending(tracker: Tracker) -> ev.Event | None:
    """The `handoff_unavailable` the shopper has not answered yet (their next message becomes a ticket)."""
    for event in reversed(_current_session(tracker)):
        kind = event.get("event")
        if kind in ("user", ev.TICKET_CREATED, ev.HANDOFF_CANCELLED, ev.HANDOFF_REQUESTED):
            return None
        if kind == ev.HANDOFF_UNAVAILABLE:
            return event
    return None


def rating_request(language: str) -> ev.Event:
    """The bot's question after a handoff ends: buttons 1–5 with `/csat{"score": N}` payloads."""
    buttons = [{"title": "★" * n, "payload": f'/csat{{"score": {n}}}'} for n in range(1, 6)]
    return ev.bot(text("utter_ask_rating", language), {"buttons": buttons, "rating_request": True},
                  utter_action="utter_ask_rating")
