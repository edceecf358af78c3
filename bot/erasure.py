"""Erasing a conversation when the shopper asks for their data to be deleted: `kefu forget ID` and
`DELETE /api/agent/conversations/{id}` (admins) both come here.

Under the conversation's lock, so no turn runs meanwhile: the human side forgets it (queue, agents' loads,
tickets: handoff/service.py), the channels forget it (sessions, uploads, e-mail threads, shopper documents:
bot/channels/erasure.py), the tracker store deletes it (last: on SQLite that also clears the write-ahead log of
all of it), then the running worker drops what it holds in memory (`forget_in_memory`). An audit entry says who
erased which id and when -- nothing of what was said.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.channels import erasure as channels
from bot.stores import KeyValue, Stores
from handoff.service import HandoffService

log = logging.getLogger(__name__)

AUDIT_PREFIX = "audit:erasure:"


@dataclass
class ConversationEraser:
    stores: Stores
    handoff: HandoffService
    upload_dir: Path | None  # the widget's uploads folder (None: no widget, no files)
    forget_in_memory: Callable[[str], None] = lambda conversation_id: None  # Agent.forget_conversation when serving

    async def erase(self, conversation_id: str, by: str) -> dict[str, int] | None:
        """Erase the conversation; how many of each thing were removed, or None if there is no such conversation.
        `by` names who asked ("agent:li", "cli:root") for the audit entry."""
        trackers = self.stores.trackers
        async with trackers.lock(conversation_id):
            if not await trackers.exists(conversation_id):
                return None
            removed = await self.handoff.forget(conversation_id)
            removed |= await channels.forget_conversation(self.stores, conversation_id, self.upload_dir)
            removed["events"] = await trackers.erase(conversation_id)
            self.forget_in_memory(conversation_id)
        await record(self.stores.kv, conversation_id, by)
        log.info("conversation %s erased by %s", conversation_id, by)
        return removed


async def record(kv: KeyValue, conversation_id: str, by: str) -> None:
    """The audit entry: who, when, which conversation."""
    now = time.time()
    await kv.set(f"{AUDIT_PREFIX}{now:017.6f}:{secrets.token_hex(4)}",
                 {"action": "erase_conversation", "conversation_id": conversation_id, "by": by, "at": now})


async def audit_log(kv: KeyValue) -> list[dict[str, Any]]:
    """Every erasure, oldest first."""
    return [entry for _, entry in await kv.scan(AUDIT_PREFIX)]
