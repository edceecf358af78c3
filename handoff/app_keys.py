"""Typed keys for what the handoff side keeps on the aiohttp app (no module-level mutable state)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from handoff.canned import CannedReplies
    from handoff.hub import ConsoleHub
    from handoff.service import HandoffService
    from handoff.settings import HandoffSettings

HANDOFF: web.AppKey[HandoffService] = web.AppKey("handoff")
# Set before start-up to use these settings instead of the project's handoff.yml (tests, embedding apps).
HANDOFF_SETTINGS: web.AppKey[HandoffSettings] = web.AppKey("handoff_settings")
HUB: web.AppKey[ConsoleHub] = web.AppKey("console_hub")
CANNED: web.AppKey[CannedReplies] = web.AppKey("canned_replies")
# Erases a conversation for good (conversation id, who asked) -> what was removed, None if unknown. Set by the server
# (bot/erasure.py knows the channels' data, which the human side does not).
ERASE_CONVERSATION: web.AppKey[Callable[[str, str], Awaitable[dict[str, int] | None]]] = \
    web.AppKey("erase_conversation")
