"""A Messenger webhook batch → one `Incoming` per event, and an event → what the bot gets (docs/channels.md §2.2).

Every `entry[]` and every `messaging[]` (and `standby[]`) item is kept, in order: Rasa's connector returned
after the first. Quick replies and postbacks are routed by payload: a Rasa payload (`/intent{...}`) goes to
the bot as is, the Get Started payload becomes `/greet`, any other payload travels in metadata with its title
as the text. Attachments become a placeholder text plus their type and URL.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from bot.channels.media import KINDS, placeholder

log = logging.getLogger(__name__)

GREET = "/greet"
_HANDOVER = ("pass_thread_control", "take_thread_control", "request_thread_control", "app_roles")


@dataclass(frozen=True)
class Incoming:
    kind: str  # message | postback | echo | delivery | read | handover | other
    user_id: str  # the shopper: a PSID, or "ref:<user_ref>" for a Chat Plugin guest
    page_id: str
    data: dict[str, Any]  # the messaging item as Meta sent it
    standby: bool = False  # another app owns the thread: we only watch

    @property
    def conversation_id(self) -> str:
        return f"messenger:{self.user_id}"

    @property
    def mid(self) -> str | None:
        item = self.data.get("message") or self.data.get("postback") or {}
        return str(item["mid"]) if isinstance(item, dict) and item.get("mid") else None


def recipient(user_id: str) -> dict[str, str]:
    return {"user_ref": user_id[4:]} if user_id.startswith("ref:") else {"id": user_id}


def parse_batch(body: dict[str, Any]) -> list[Incoming]:
    """All events of all entries, in the order Meta sent them; malformed items are logged and skipped."""
    found: list[Incoming] = []
    entries = body.get("entry")
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        for key in ("messaging", "standby"):
            items = entry.get(key)
            for item in items if isinstance(items, list) else []:
                incoming = _incoming(item, str(entry.get("id") or ""), key == "standby")
                if incoming is None:
                    log.info("Messenger: skipped a malformed %s item", key)
                else:
                    found.append(incoming)
    return found


def _id(party: Any) -> str | None:
    if not isinstance(party, dict):
        return None
    if party.get("id"):
        return str(party["id"])
    return f"ref:{party['user_ref']}" if party.get("user_ref") else None


def _incoming(item: Any, page_id: str, standby: bool) -> Incoming | None:
    if not isinstance(item, dict):
        return None
    message = item.get("message")
    echo = isinstance(message, dict) and bool(message.get("is_echo"))
    user = _id(item.get("recipient") if echo else item.get("sender"))
    if user is None:
        return None
    if isinstance(message, dict):
        kind = "echo" if echo else "message"
    elif isinstance(item.get("postback"), dict):
        kind = "postback"
    elif isinstance(item.get("delivery"), dict) or isinstance(item.get("read"), dict):
        kind = "delivery" if "delivery" in item else "read"
    elif any(key in item for key in _HANDOVER):
        kind = "handover"
    else:
        kind = "other"
    return Incoming(kind, user, page_id, item, standby)


def to_text(incoming: Incoming, language: str, get_started_payload: str) -> tuple[str, dict[str, Any]] | None:
    """(text for the bot, metadata) of a message or postback; None if there is nothing to answer."""
    if incoming.kind == "postback":
        postback = incoming.data["postback"]
        payload, title = str(postback.get("payload") or ""), str(postback.get("title") or "")
        metadata = {"postback": {"payload": payload, "title": title}}
        if postback.get("referral"):
            metadata["referral"] = postback["referral"]
        text = GREET if payload == get_started_payload else _routed(payload, title)
        return (text, metadata) if text else None
    message = incoming.data["message"]
    text = str(message.get("text") or "").strip()
    metadata: dict[str, Any] = {}
    quick = message.get("quick_reply")
    if isinstance(quick, dict) and quick.get("payload"):
        payload = str(quick["payload"])
        metadata["quick_reply"] = {"payload": payload, "title": text}
        text = _routed(payload, text)
    listed = message.get("attachments")
    attachments = [_attachment(a) for a in (listed if isinstance(listed, list) else []) if isinstance(a, dict)]
    if attachments:
        metadata["attachments"] = attachments
        metadata["media"] = attachments[0]
        if not text:
            text = " ".join(placeholder(a["type"], language) for a in attachments)
    if message.get("reply_to"):
        metadata["reply_to"] = message["reply_to"]
    return (text, metadata) if text else None


def _routed(payload: str, title: str) -> str:
    return payload if payload.startswith("/") else (title or payload)


def _attachment(attachment: dict[str, Any]) -> dict[str, Any]:
    kind = str(attachment.get("type") or "unknown")
    payload = attachment.get("payload") if isinstance(attachment.get("payload"), dict) else {}
    found: dict[str, Any] = {"type": kind}
    for key in ("url", "sticker_id", "title"):
        if payload.get(key):
            found[key] = payload[key]
    if kind == "fallback":
        found["url"] = attachment.get("url") or payload.get("url")
        log.info("Messenger: a fallback attachment (a shared link or unsupported content)")
    elif kind not in KINDS:
        log.info("Messenger: unsupported attachment type %r", kind)
    return found
