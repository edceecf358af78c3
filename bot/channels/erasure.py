"""The channels' part of erasing a conversation (a shopper's request to delete their data): what each channel
keeps about it beside the tracker, found from the stores alone so `kefu forget` works without a running server.

    widget     sessions bound to it (`widget:session:<hash>`), uploads (record and file), its upload quota
    e-mail     the thread (`email:thread:<id>`), Message-ID mappings, mails still in the outbox
    WeChat     the shopper's allowance book and numbered options (`wechat:allowance|options:<openid>`)
    Messenger  the shopper's thread state (`messenger:thread:<user>`)
    push       messages acknowledged but not yet answered (`<channel>:inbox:<id>/…`)
    all        claimed outgoing ids (`out:<id>:<seq>`), so a new conversation under the same id is answered;
               its rate-limit buckets (bot/ratelimit.py)

The caller holds the conversation's lock and erases the tracker itself (bot/erasure.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot import ratelimit
from bot.channels.email import outbox as email_outbox
from bot.channels.messenger import MessengerChannel
from bot.channels.messenger.threads import ThreadBook
from bot.channels.settings import load_settings
from bot.channels.wechat import WeChatChannel
from bot.channels.wechat.allowance import AllowanceBook
from bot.channels.wechat.outbound import options_key
from bot.channels.widget import WidgetChannel, sessions, upload_quota, uploads
from bot.stores import KeyValue, Stores

PUSH_CHANNELS = (WeChatChannel, MessengerChannel)
OUTGOING_CLAIMS = ("out:{}:",)  # push/claims.py (what each worker sends)


def _shopper_keys(conversation_id: str) -> list[str]:
    """The documents kept under the conversation's id, or under the shopper's id on its platform."""
    keys = [f"{upload_quota.KEY_PREFIX}{conversation_id}", f"email:thread:{conversation_id}"]
    wechat, messenger = WeChatChannel.conversation_prefix or "", MessengerChannel.conversation_prefix or ""
    if conversation_id.startswith(wechat):
        openid = conversation_id.removeprefix(wechat)
        keys += [f"{AllowanceBook.channel}:{AllowanceBook.kind}:{openid}", options_key(openid)]
    elif conversation_id.startswith(messenger):
        keys.append(f"{ThreadBook.channel}:{ThreadBook.kind}:{conversation_id.removeprefix(messenger)}")
    return keys


def upload_dir(channels: Mapping[str, Any], project_dir: Path) -> Path | None:
    """The widget's uploads folder from endpoints.yml's `channels:` (None when the widget is not served)."""
    settings = load_settings(WidgetChannel, channels.get("widget"))
    return settings.upload_path(project_dir) if settings is not None else None


async def forget_conversation(stores: Stores, conversation_id: str, upload_dir: Path | None) -> dict[str, int]:
    """Remove what the channels keep about the conversation; how many of each were removed."""
    kv = stores.kv
    removed = {
        "widget_sessions": await _delete_naming(kv, sessions.KEY_PREFIX, "conversation_id", conversation_id),
        "uploads": await _forget_uploads(kv, conversation_id, upload_dir),
        "email_message_ids": await _delete_naming(kv, "email:msgid:", "conversation", conversation_id),
        "email_outbox": await _delete_naming(kv, email_outbox.KEY, "conversation", conversation_id),
        "unanswered": sum([await _delete_naming(kv, f"{c.conversation_prefix}inbox:{conversation_id}/",
                                                "conversation", conversation_id) for c in PUSH_CHANNELS]),
    }
    removed["shopper_documents"] = 0
    for key in _shopper_keys(conversation_id):
        if await kv.get(key) is not None:
            await kv.delete(key)
            removed["shopper_documents"] += 1
    removed["outgoing_claims"] = sum([await stores.trackers.forget_message_ids(claim.format(conversation_id))
                                      for claim in OUTGOING_CLAIMS])
    removed["rate_buckets"] = await ratelimit.forget_conversation(kv, conversation_id)
    return removed


async def _delete_naming(kv: KeyValue, prefix: str, field: str, conversation_id: str) -> int:
    """Delete the documents under prefix whose `field` is the conversation."""
    found = [key for key, doc in await kv.scan(prefix) if doc.get(field) == conversation_id]
    for key in found:
        await kv.delete(key)
    return len(found)


async def _forget_uploads(kv: KeyValue, conversation_id: str, upload_dir: Path | None) -> int:
    """The conversation's uploaded files and their records (the file first: a record never outlives it)."""
    found = [key for key, doc in await kv.scan(uploads.KEY_PREFIX) if doc.get("conversation_id") == conversation_id]
    loop = asyncio.get_running_loop()
    for key in found:
        attachment_id = key.removeprefix(uploads.KEY_PREFIX)
        if upload_dir is not None and uploads.ID_PATTERN.match(attachment_id):
            await loop.run_in_executor(None, _unlink, upload_dir / attachment_id)
        await kv.delete(key)
    return len(found)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
