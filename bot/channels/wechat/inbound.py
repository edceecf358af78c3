"""A WeChat push (parsed XML fields) → what the bot gets: text, metadata, dedupe key (docs/channels.md §1.3).

Media become a placeholder text in the conversation's language ("[图片]", "[image]") plus metadata (media id,
URL, type), so the bot can answer (escalate, or say it cannot read pictures) and the agent sees the media id.
Events: follow and QR scan greet, a menu click sends its key (a `/intent` payload or words), unfollow and
link-menu views have no bot turn; anything unknown is None (answered `success`, logged).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from bot.channels.media import KINDS, placeholder
from bot.channels.wechat.xml import Fields

GREET = "/greet"


@dataclass(frozen=True)
class Inbound:
    openid: str
    account: str  # our gh_ id (ToUserName), the From of a passive reply
    msg_type: str
    dedupe_key: str
    text: str | None  # None: no bot turn (unfollow, link-menu view)
    metadata: dict[str, Any] = field(default_factory=dict)
    opens: Literal["message", "event"] | None = None  # which custom-send allowance this push opens


def normalise(fields: Fields, language: str = "zh") -> Inbound | None:
    """None for a message type or event we do not handle."""
    openid, msg_type = fields.get("FromUserName"), fields.get("MsgType").lower()
    create_time, event = fields.get("CreateTime"), fields.get("Event")
    msg_id = fields.get("MsgId")  # case-insensitive: MsgID too
    key = msg_id or f"{openid}:{create_time}:{event}"
    base = {"openid": openid, "account": fields.get("ToUserName"), "msg_type": msg_type, "dedupe_key": key}
    if msg_type == "text":
        meta = {"bizmsgmenuid": fields.get("bizmsgmenuid")} if "bizmsgmenuid" in fields else {}
        return Inbound(**base, text=fields.get("Content"), metadata=meta, opens="message")
    if msg_type in KINDS:
        return _media(base, fields, language)
    if msg_type == "event":
        return _event(base, fields, event.lower())
    return None


def _media(base: dict[str, Any], fields: Fields, language: str) -> Inbound:
    msg_type = base["msg_type"]
    text = placeholder(msg_type, language)
    meta: dict[str, Any] = {"type": msg_type}
    for name, key in (("MediaId", "media_id"), ("PicUrl", "url"), ("Format", "format"),
                      ("ThumbMediaId", "thumb_media_id"), ("Url", "url"), ("Title", "title"),
                      ("Label", "label"), ("Location_X", "latitude"), ("Location_Y", "longitude")):
        if fields.get(name):
            meta[key] = fields.get(name)
    if msg_type == "voice" and fields.get("Recognition"):
        text = fields.get("Recognition")  # WeChat's own speech recognition, when enabled for the account
        meta["recognition"] = text
    elif msg_type in ("location", "link") and (meta.get("label") or meta.get("title")):
        text = f"{text} {meta.get('label') or meta.get('title')}"
    return Inbound(**base, text=text, metadata={"media": meta}, opens="message")


def _event(base: dict[str, Any], fields: Fields, event: str) -> Inbound | None:
    key = fields.get("EventKey")
    meta: dict[str, Any] = {"event": event}
    if event in ("subscribe", "scan"):
        scene = key.removeprefix("qrscene_")
        if scene:
            meta["scene"] = scene
        return Inbound(**base, text=GREET, metadata=meta, opens="event")
    if event == "click":
        meta["event_key"] = key
        return Inbound(**base, text=key or GREET, metadata=meta, opens="event")
    if event in ("unsubscribe", "view"):
        return Inbound(**base, text=None, metadata=meta)
    return None
