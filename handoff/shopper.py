"""Reading the shopper's side of a handoff without the classifier: cancel, a rating, leaving a message, "where is
my ticket", and where the conversation stands.

These run before the bot sees a message and only in the situation they belong to (a rating only while one is
asked for, a cancel only while waiting or just offered a message), so short words like "5", "算了" or "留言"
can't be misread elsewhere. Buttons send Rasa payloads (`/cancel_handoff`, `/csat{"score": 4}`,
`/leave_message`, `/ticket_status`), which always work.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from bot import strict_json
from bot.dialogue import events as ev
from bot.dialogue.tracker import Tracker
from bot.language import bot_message_in_traditional, mainland_chinese
from bot.notices import text

CANCEL_PAYLOAD = "/cancel_handoff"
TICKET_PAYLOAD = "/ticket_status"
RATING_PAYLOAD = "/csat"
LEAVE_MESSAGE_PAYLOAD = "/leave_message"

_CANCEL = re.compile(
    r"^(cancel|stop|stop waiting|never ?mind|no thanks|no,? thanks|forget it|don'?t bother|back to (the )?bot"
    r"|取消|取消转人工|不用了|算了|不等了|不要了|不用|退出)$", re.IGNORECASE)
_RATING = re.compile(r"^(?P<n>[1-5一二两三四五])\s*(stars?|/\s*5|分|颗星|星|星好评|分好评)?$", re.IGNORECASE)
_CHINESE_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_TICKET = re.compile(
    r"\bmy (ticket|message|request)s?\b|\bticket (status|number|progress)\b|\bstatus of my (ticket|message)\b"
    r"|工单|留言(进度|处理|状态)|我的留言", re.IGNORECASE)
# "leave a message", "I'd like to leave a message for the team", "留言", "我要留言", "给客服留个言吧"
_LEAVE_MESSAGE = re.compile(
    r"^\s*(?:(?:i(?:'d| would)? (?:like|want) to |i'll |let me |can i |please )?leave (?:a |my )?(?:message|note)"
    r"(?: for (?:the |your )?team)?|(?:我)?(?:要|想)?(?:给(?:客服|你们))?留(?:个)?言(?:吧)?)", re.IGNORECASE)
_SEPARATOR = re.compile(r"^[\s:：,，;；.。!！?？-]+")
_TRIM = re.compile(r"^[\s\W_]+|[\s\W_]+$")


def _clean(message: str) -> str:
    """Trimmed, traditional characters as simplified ("取消轉人工", "五顆星")."""
    return mainland_chinese(_TRIM.sub("", message or "").strip())


def is_cancel(message: str) -> bool:
    return (message or "").strip() == CANCEL_PAYLOAD or bool(_CANCEL.match(_clean(message)))


def rating_score(message: str) -> int | None:
    """1–5 from `/csat{"score": N}`, "4", "5 stars", "五星", "3分"; None for anything else."""
    message = (message or "").strip()
    if message.startswith(RATING_PAYLOAD):
        score = _payload_field(message, RATING_PAYLOAD, "score")
        return int(score) if isinstance(score, int | float) and 1 <= score <= 5 and int(score) == score else None
    match = _RATING.match(_clean(message))
    if not match:
        return None
    n = match["n"]
    return _CHINESE_DIGITS.get(n) or int(n)


def leave_message(message: str) -> tuple[bool, str]:
    """Whether the shopper chose to leave a message, and the message given with the choice ("" when it is to
    follow): `/leave_message`, `/leave_message{"text": "…"}`, "留言" / "leave a message", "留言：…" /
    "leave a message: …". A question that merely starts with the words ("留言多久回复") is no choice."""
    message = (message or "").strip()
    if message == LEAVE_MESSAGE_PAYLOAD or message.startswith(LEAVE_MESSAGE_PAYLOAD + "{"):
        given = _payload_field(message, LEAVE_MESSAGE_PAYLOAD, "text")
        return True, given.strip() if isinstance(given, str) else ""
    match = _LEAVE_MESSAGE.match(mainland_chinese(message))  # same length: `match.end()` holds in `message`
    if not match:
        return False, ""
    rest = message[match.end():]
    if not _clean(rest):
        return True, ""
    separator = _SEPARATOR.match(rest)
    return (True, rest[separator.end():].strip()) if separator else (False, "")


def asks_ticket_status(message: str) -> bool:
    return (message or "").strip() == TICKET_PAYLOAD or bool(_TICKET.search(mainland_chinese(message or "")))


def is_payload(message: str) -> bool:
    return (message or "").strip().startswith("/")


def _payload_field(message: str, payload: str, name: str) -> Any:
    try:
        return strict_json.loads(message[len(payload):] or "{}").get(name)
    except (strict_json.JSONInputError, AttributeError):
        return None


# -- where the conversation stands (from its events) -----------------------------------------------------------


def _back_through_session(tracker: Tracker) -> Iterator[ev.Event]:
    """The current session's events, latest first (callers stop early: a long conversation is not read through)."""
    for i in range(len(tracker.events) - 1, -1, -1):
        if tracker.events[i].get("event") in ("session_started", "restart"):
            return
        yield tracker.events[i]


def _asked(tracker: Tracker, flag: str) -> Any:
    """The data `flag` of the bot's question if the shopper has not written since it was asked, else None."""
    for event in _back_through_session(tracker):
        kind = event.get("event")
        if kind in ("user", ev.CSAT, ev.TICKET_CREATED):
            return None
        if kind == "bot" and (event.get("data") or {}).get(flag):
            return event["data"][flag]
    return None


def rating_pending(tracker: Tracker) -> bool:
    """The bot asked for a rating and the shopper has not written since."""
    return _asked(tracker, "rating_request") is not None


def message_pending(tracker: Tracker) -> str | None:
    """The shopper chose to leave a message and was asked for it: its ticket's reason (closed, offline…)."""
    return _asked(tracker, "leave_message")


def unavailable_pending(tracker: Tracker) -> ev.Event | None:
    """The `handoff_unavailable` just said, if the shopper has not written since (a "cancel" answers it)."""
    for event in _back_through_session(tracker):
        kind = event.get("event")
        if kind in ("user", ev.TICKET_CREATED, ev.HANDOFF_CANCELLED, ev.HANDOFF_REQUESTED):
            return None
        if kind == ev.HANDOFF_UNAVAILABLE:
            return event
    return None


def message_offer(tracker: Tracker) -> ev.Event | None:
    """The `handoff_unavailable` whose offer to leave a message still stands: none was left since, nor was the
    offer declined or a new handoff asked for. Questions for the bot in between don't withdraw it."""
    latest = tracker.latest(ev.HANDOFF_UNAVAILABLE, ev.TICKET_CREATED, ev.HANDOFF_CANCELLED, ev.HANDOFF_REQUESTED,
                            ev.HANDOFF_ENDED, "session_started", "restart")
    return latest if latest is not None and latest.get("event") == ev.HANDOFF_UNAVAILABLE else None


def nobody_online(tracker: Tracker) -> bool:
    """The shopper's last place in line came with "nobody is online right now"."""
    queued = tracker.latest(ev.QUEUED)
    return bool(queued and queued.get("nobody_online"))


def rating_request(language: str, traditional: bool = False) -> ev.Event:
    """The bot's question after a handoff ends: buttons 1–5 with `/csat{"score": N}` payloads."""
    buttons = [{"title": "★" * n, "payload": f'/csat{{"score": {n}}}'} for n in range(1, 6)]
    asked = ev.bot(text("utter_ask_rating", language), {"buttons": buttons, "rating_request": True},
                   utter_action="utter_ask_rating")
    return bot_message_in_traditional(asked) if traditional else asked


def message_request(language: str, reason: str) -> ev.Event:
    """The bot's "write your message" after the shopper chose to leave one; `reason` goes on the ticket."""
    return ev.bot(text("utter_ask_leave_message", language), {"leave_message": reason},
                  utter_action="utter_ask_leave_message")
