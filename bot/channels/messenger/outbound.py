"""Bot events → Send API `message` objects (docs/channels.md §2.5, checklist F14).

Long text is split (2000 characters); buttons become quick replies on the last part, within Messenger's limits
(13 replies, 20-character titles: longer ones are cut and logged, not refused). Every message carries our
`metadata` marker, so its echo is recognised as ours and ignored (F8).
"""

from __future__ import annotations

import logging
from typing import Any

from bot.channels.messenger.config import MessengerSettings
from bot.channels.push.text import split_text
from bot.dialogue import events as ev
from bot.notices import NOTICE_KINDS, shopper_text

log = logging.getLogger(__name__)

MARKER = "kefu"


def text_messages(text: str, settings: MessengerSettings) -> list[dict[str, Any]]:
    return [{"text": part, "metadata": MARKER} for part in split_text(text, settings.text_max_chars)]


def render(events: list[ev.Event], settings: MessengerSettings, language: str) -> list[dict[str, Any]]:
    """Messages for the bot events and handoff notices among `events`, in order."""
    messages: list[dict[str, Any]] = []
    for event in events:
        if event.get("event") in NOTICE_KINDS:
            messages += text_messages(shopper_text(event, language) or "", settings)
            continue
        if event.get("event") != "bot":
            continue
        data = event.get("data") or {}
        parts = text_messages(event.get("text") or "", settings)
        quick = quick_replies(data.get("buttons") or data.get("quick_replies") or [], settings)
        if quick:
            if not parts:
                parts = [{"text": "👇", "metadata": MARKER}]
            parts[-1]["quick_replies"] = quick
        messages += parts
        if isinstance(data.get("image"), str):
            messages.append({"attachment": {"type": "image", "payload": {"url": data["image"], "is_reusable": True}},
                             "metadata": MARKER})
    return messages


def quick_replies(buttons: list[Any], settings: MessengerSettings) -> list[dict[str, str]]:
    found = [b for b in buttons if isinstance(b, dict) and b.get("title") and b.get("payload")]
    if len(found) > settings.quick_replies_max:
        log.warning("Messenger: %d buttons, only the first %d shown as quick replies", len(found),
                    settings.quick_replies_max)
    replies = []
    for button in found[: settings.quick_replies_max]:
        title = str(button["title"])
        if len(title) > settings.quick_reply_title_max:
            log.info("Messenger: quick reply title cut to %d characters", settings.quick_reply_title_max)
            title = title[: settings.quick_reply_title_max - 1] + "…"
        replies.append({"content_type": "text", "title": title, "payload": str(button["payload"])[:1000]})
    return replies
