"""How many customer-service messages a shopper may still get, and what waits for them (docs/channels.md §1.6).

WeChat allows 5 custom-send messages within 48 h after a shopper's message (3 within a minute after a follow,
scan or menu click). The book lives in the key/value store, updated by compare-and-set, so every worker sees
the same count. Messages that cannot go (allowance used, window closed, or WeChat said 45047/45015) wait in
`pending` and go out, in order, when the shopper writes again. The console reads the state from the
conversation's meta: `get_meta(id)["wechat"] = {"quota_left", "window_ends", "pending"}`.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from bot.channels.push.documents import Doc, ShopperBook
from bot.channels.wechat.config import WeChatSettings

log = logging.getLogger(__name__)

MAX_PENDING = 100


class AllowanceBook(ShopperBook[WeChatSettings]):
    channel = "wechat"
    kind = "allowance"

    def left(self, doc: Doc | None) -> int:
        if not doc or self.clock() >= float(doc.get("window_ends") or 0):
            return 0
        return max(int(doc.get("limit") or 0) - int(doc.get("used") or 0), 0)

    async def opened(self, openid: str, by: Literal["message", "event"]) -> list[Doc]:
        """The shopper wrote (or followed / scanned / clicked): a new allowance; returns the messages that
        were waiting for it (taken out of `pending`, to be sent now)."""
        now, s = self.clock(), self.settings
        taken: list[Doc] = []

        def change(doc: Doc | None) -> Doc:
            doc = doc or {"pending": []}
            if by == "message":
                doc.update(window_ends=now + s.window_s, limit=s.quota_per_message, used=0)
            elif self.left(doc) < s.event_quota:  # a follow/scan/click never shortens a shopper's 48 h
                doc.update(window_ends=now + s.event_window_s, limit=s.event_quota, used=0)
            taken[:] = doc.get("pending") or []
            doc["pending"] = []
            return doc

        await self.update(openid, change)
        return taken

    async def reserve(self, openid: str, keep: int = 0) -> bool:
        """Take one message of the allowance if more than `keep` are left and nothing older waits."""
        granted = False

        def change(doc: Doc | None) -> Doc | None:
            nonlocal granted
            granted = self.left(doc) > keep and not (doc or {}).get("pending")
            if granted and doc is not None:
                doc["used"] = int(doc.get("used") or 0) + 1
            return doc

        await self.update(openid, change)
        return granted

    async def refund(self, openid: str) -> None:
        """A reserved message did not go out for a reason that is not the allowance."""
        def change(doc: Doc | None) -> Doc | None:
            if doc:
                doc["used"] = max(int(doc.get("used") or 0) - 1, 0)
            return doc

        await self.update(openid, change)

    async def refused(self, openid: str, code: int, items: list[Doc]) -> None:
        """WeChat said 45047 (used up) or 45015 (window closed): believe it, and keep the messages."""
        def change(doc: Doc | None) -> Doc:
            doc = doc or {"pending": []}
            if code == 45015:
                doc["window_ends"] = min(float(doc.get("window_ends") or 0), self.clock())
            else:
                doc["used"] = int(doc.get("limit") or 0)
            doc["pending"] = _capped(items + list(doc.get("pending") or []), openid)
            return doc

        await self.update(openid, change)

    async def park(self, openid: str, items: list[Doc], front: bool = False) -> None:
        """Keep messages until the shopper writes again (front: they were older than what waits already)."""
        def change(doc: Doc | None) -> Doc:
            doc = doc or {"pending": []}
            waiting = list(doc.get("pending") or [])
            doc["pending"] = _capped(items + waiting if front else waiting + items, openid)
            return doc

        await self.update(openid, change)

    def view(self, doc: Doc) -> dict[str, Any]:
        """What the console shows: messages left, when the window ends, how many messages wait."""
        ends = float(doc.get("window_ends") or 0) if doc else 0
        return {"quota_left": self.left(doc), "window_ends": ends if ends > self.clock() else None,
                "pending": len(doc.get("pending") or []) if doc else 0}


def _capped(items: list[Doc], openid: str) -> list[Doc]:
    if len(items) > MAX_PENDING:
        log.warning("WeChat: more than %d messages wait for one shopper; dropping the oldest", MAX_PENDING)
        return items[-MAX_PENDING:]
    return items
