"""The bubble's wire protocol (docs/channels.md §3.3, docs/widget.md): client frames in, server frames out.

Pure functions, no I/O: `parse_client_frame` turns a text frame into one of a few typed frames or raises
`FrameError` with the code the client gets; `render_event` turns a stored (or bus) event into what the shopper
may see -- never parse data, candidates, private notes or agent accounts. Frames of stored events carry their
`seq` and `prev_seq`, the seq of the shopper-visible event before them (0 for the first): a panel that has
shown everything up to `prev_seq` can show the frame; otherwise one is missing and it asks for it (§3.3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot import strict_json
from bot.channels.widget.settings import WidgetSettings
from bot.dialogue import events as ev

Frame = dict[str, Any]

CLIENT_MSG_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
ATTACHMENT_ID = re.compile(r"^att_[A-Za-z0-9_-]{16,64}$")
MAX_ATTACHMENTS = 5
MAX_TITLE_CHARS = 200
MAX_QUICK_REPLIES = 10
SENDING_TYPES = {"message", "quick_reply", "handoff_request", "handoff_cancel", "csat"}

# -- client -> server ------------------------------------------------------------------------------------------


class FrameError(ValueError):
    """A frame the server will not act on; `code` goes back in an `error` frame."""

    def __init__(self, code: str, message: str, client_msg_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.client_msg_id = client_msg_id


@dataclass(frozen=True)
class Hello:
    token: str
    last_seq: int


@dataclass(frozen=True)
class Outgoing:
    """Something the shopper says: typed text, a button's payload, or uploaded files."""

    client_msg_id: str
    text: str  # what the bot reads (a Rasa payload for buttons)
    title: str | None = None  # what the shopper sees instead of a payload
    attachments: tuple[str, ...] = ()


@dataclass(frozen=True)
class Typing:
    on: bool


@dataclass(frozen=True)
class Read:
    seq: int


@dataclass(frozen=True)
class Ping:
    pass


ClientFrame = Hello | Outgoing | Typing | Read | Ping
Said = tuple[str, Outgoing]  # what a shopper sent, and the conversation its socket is bound to


def parse_client_frame(raw: str, settings: WidgetSettings) -> ClientFrame:
    if len(raw.encode("utf-8", "surrogatepass")) > settings.max_frame_bytes:
        raise FrameError("too_large", f"frames are limited to {settings.max_frame_bytes} bytes")
    try:
        data = strict_json.loads(raw)
    except strict_json.JSONInputError as exc:
        raise FrameError("bad_frame", f"a frame must be a JSON object: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise FrameError("bad_frame", 'a frame must be a JSON object with a "type"')
    kind = data["type"]
    if kind == "hello":
        return Hello(_string(data, "token", 100, required=False) or "", _seq(data.get("last_seq", 0)))
    if kind == "typing":
        state = data.get("state")
        if state not in ("on", "off"):
            raise FrameError("bad_frame", 'typing needs "state": "on" or "off"')
        return Typing(state == "on")
    if kind == "read":
        return Read(_seq(data.get("seq")))
    if kind == "ping":
        return Ping()
    if kind in SENDING_TYPES:
        return _outgoing(kind, data, settings)
    raise FrameError("unknown_type", f"unknown frame type {kind[:40]!r}")


def _outgoing(kind: str, data: dict[str, Any], settings: WidgetSettings) -> Outgoing:
    client_msg_id = data.get("client_msg_id")
    if not isinstance(client_msg_id, str) or not CLIENT_MSG_ID.match(client_msg_id):
        raise FrameError("bad_frame", "client_msg_id must be 8-64 letters, digits, '-' or '_'")
    try:
        title = _string(data, "title", MAX_TITLE_CHARS, required=False)
        payloads = settings.payloads
        if kind == "message":
            attachments = _attachments(data.get("attachments"))
            text = _string(data, "text", settings.max_text_chars, required=not attachments) or ""
            return Outgoing(client_msg_id, text, None, attachments)
        if kind == "quick_reply":
            payload = _string(data, "payload", settings.max_text_chars, required=True)
            return Outgoing(client_msg_id, payload or "", title or payload)
        if kind == "handoff_request":
            return Outgoing(client_msg_id, payloads.handoff, title)
        if kind == "handoff_cancel":
            return Outgoing(client_msg_id, payloads.cancel, title)
        score = data.get("score")  # csat
        if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 5:
            raise FrameError("bad_frame", "csat needs an integer score from 1 to 5")
        return Outgoing(client_msg_id, f'{payloads.csat}{{"score": {score}}}', title or "★" * score)
    except FrameError as exc:
        exc.client_msg_id = client_msg_id
        raise


def _string(data: dict[str, Any], key: str, max_chars: int, required: bool) -> str | None:
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip() and not required):
        if required:
            raise FrameError("bad_frame", f"{key!r} is required")
        return None
    if not isinstance(value, str):
        raise FrameError("bad_frame", f"{key!r} must be a string")
    if required and not value.strip():
        raise FrameError("bad_frame", f"{key!r} is empty")
    if len(value) > max_chars:
        raise FrameError("too_large", f"{key!r} is longer than {max_chars} characters")
    return value


def _seq(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FrameError("bad_frame", "seq must be a non-negative integer")
    return value


def _attachments(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_ATTACHMENTS:
        raise FrameError("bad_frame", f"attachments must be a list of at most {MAX_ATTACHMENTS} ids")
    if not all(isinstance(v, str) and ATTACHMENT_ID.match(v) for v in value):
        raise FrameError("bad_frame", "attachments must be ids returned by /api/widget/upload")
    return tuple(dict.fromkeys(value))


# -- server -> client ------------------------------------------------------------------------------------------

HANDOFF_STATES = {
    ev.HANDOFF_REQUESTED: "requested",
    ev.QUEUED: "queued",
    ev.AGENT_ASSIGNED: "assigned",
    ev.HANDOFF_ENDED: "ended",
    ev.HANDOFF_CANCELLED: "cancelled",
    ev.HANDOFF_UNAVAILABLE: "unavailable",
}


def error(code: str, message: str, **extra: Any) -> Frame:
    return {"type": "error", "code": code, "message": message, **{k: v for k, v in extra.items() if v is not None}}


def frames(events: list[ev.Event], after_seq: int = 0) -> list[Frame]:
    """The frames for the events after `after_seq` (of a conversation's events in seq order), chained by
    `prev_seq`."""
    prev, out = last_shown(events, after_seq), []
    for event in events:
        if event["seq"] > after_seq and (frame := render_event(event)) is not None:
            out.append({**frame, "prev_seq": prev})
            prev = event["seq"]
    return out


def last_shown(events: list[ev.Event], upto: int) -> int:
    """The seq of the last event up to `upto` that a shopper sees (0 if none): the next frame's `prev_seq`."""
    return next((e["seq"] for e in reversed(events) if e["seq"] <= upto and render_event(e) is not None), 0)


def render_event(event: ev.Event) -> Frame | None:
    """The frame a shopper sees for an event, or None for what is not theirs to see."""
    kind = event.get("event")
    if kind == ev.TYPING:
        role = event.get("role")
        if role not in ("bot", "agent"):
            return None  # the shopper's own typing goes to the console, not back to them
        frame: Frame = {"type": "typing", "role": role, "state": "on" if event.get("on") else "off"}
        if role == "agent" and _agent_name(event):
            frame["agent"] = {"name": _agent_name(event)}
        return frame
    base: Frame = {"seq": event.get("seq"), "ts": event.get("timestamp")}
    if kind == "user":
        return {"type": "message", **base, "role": "user", **_user_message(event)}
    if kind == "bot":
        return _bot_message(event, base)
    if kind == ev.AGENT_MESSAGE:
        frame = {"type": "message", **base, "role": "agent", "text": _text(event.get("text")),
                 "agent": {"name": _agent_name(event) or ""}}
        attachments = [_attachment(a) for a in event.get("attachments") or [] if isinstance(a, dict)]
        if any(attachments):
            frame["attachments"] = [a for a in attachments if a]
        return frame
    if kind in HANDOFF_STATES:
        return _handoff(kind, event, base)
    if kind == ev.TICKET_CREATED:
        return {"type": "ticket", **base, "ticket_id": str(event.get("ticket_id") or "")}
    if kind == ev.CSAT:
        return {"type": "csat", **base, "score": event.get("score")}
    return None


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _agent_name(event: ev.Event) -> str | None:
    name = event.get("agent_name") or event.get("agent")
    return name if isinstance(name, str) and name else None


def _user_message(event: ev.Event) -> Frame:
    metadata = event.get("metadata") or {}
    title = metadata.get("title")
    attachments = [a for a in (_attachment(x) for x in metadata.get("attachments") or []) if a]
    text = _text(title) or _text(event.get("text"))
    if attachments:
        text = _text(metadata.get("caption"))
    frame: Frame = {"text": text}
    if event.get("message_id"):
        frame["client_msg_id"] = event["message_id"]
    if attachments:
        frame["attachments"] = attachments
    return frame


def _bot_message(event: ev.Event, base: Frame) -> Frame | None:
    data = event.get("data") or {}
    frame: Frame = {"type": "message", **base, "role": "bot", "text": _text(event.get("text"))}
    buttons = data.get("buttons") or data.get("quick_replies") or []
    replies = [{"title": str(b.get("title") or b.get("payload")), "payload": str(b.get("payload") or b.get("title"))}
               for b in buttons if isinstance(b, dict) and (b.get("payload") or b.get("title"))]
    if replies:
        frame["quick_replies"] = replies[:MAX_QUICK_REPLIES]
    if data.get("rating_request"):
        frame["rating"] = True  # the panel shows its stars instead of the 1-5 buttons
    if data.get("leave_message"):
        frame["leave_message"] = True  # the bot asks for the message to leave: the panel says "leave a message"
    image = data.get("image")
    if isinstance(image, str) and image.startswith(("https://", "http://")):
        frame["attachments"] = [{"url": image, "name": "image", "mime": "image/*"}]
    if not frame["text"] and not replies and "attachments" not in frame:
        return None
    return frame


def _attachment(value: object) -> Frame | None:
    if not isinstance(value, dict) or not isinstance(value.get("url"), str):
        return None
    return {k: value[k] for k in ("id", "url", "name", "mime", "size") if k in value}


def _handoff(kind: str, event: ev.Event, base: Frame) -> Frame:
    frame: Frame = {"type": "handoff", **base, "state": HANDOFF_STATES[kind]}
    if kind == ev.QUEUED:
        frame["queue_position"] = event.get("position")
        frame["eta_s"] = event.get("eta_s")
        frame["nobody_online"] = bool(event.get("nobody_online"))  # in hours, nobody logged in: wait or write
    elif kind == ev.AGENT_ASSIGNED:
        frame["agent"] = {"name": _agent_name(event) or ""}
    elif kind == ev.HANDOFF_CANCELLED:
        frame["leave_message"] = bool(event.get("leave_message"))  # left the line to leave a message
    elif kind == ev.HANDOFF_UNAVAILABLE:
        frame["reason"] = event.get("reason")
        frame["next_open"] = event.get("next_open")
        frame["timezone"] = event.get("timezone")  # the shop's: "back at" is said in it, and named
    return frame


HANDOFF_DETAILS = ("queue_position", "eta_s", "nobody_online", "leave_message", "reason", "next_open", "timezone")


def conversation_state(events: list[ev.Event]) -> Frame:
    """Where the conversation stands, from all its events, so a panel that shows only the latest messages still
    knows it: `handoff` (a handoff state, or `leave_message` while the bot waits for the message to leave, or
    `ticket` once it is left; null with the bot), the agent, the last handoff frame's details (place in line,
    nobody online, when the team is back and in which time zone) and whether a rating is wanted."""
    state: Frame = {"handoff": None, "agent": None, "csat_pending": False, "details": {}}
    for event in events:
        kind = event.get("event")
        if kind in HANDOFF_STATES:
            frame = _handoff(kind, event, {})
            state["handoff"] = frame["state"]
            state["details"] = {k: frame[k] for k in HANDOFF_DETAILS if frame.get(k) is not None}
            if kind == ev.AGENT_ASSIGNED:
                state["agent"] = frame["agent"]
            state["csat_pending"] = False  # the stars come with the bot's rating request, not with the end
        elif kind == ev.TICKET_CREATED:
            state["handoff"], state["details"] = "ticket", {"ticket_id": str(event.get("ticket_id") or "")}
        elif kind == "bot":
            data = event.get("data") or {}
            if data.get("leave_message"):
                state["handoff"], state["details"] = "leave_message", {}
            elif state["handoff"] == "leave_message":  # "OK, no message left": back with the bot
                state["handoff"], state["details"] = None, {}
            if data.get("rating_request"):
                state["csat_pending"] = True
        elif kind in ("user", ev.CSAT):  # rated, or wrote something else: the stars go away
            state["csat_pending"] = False
    if state["handoff"] not in ("requested", "queued", "assigned"):
        state["agent"] = None
    return state

