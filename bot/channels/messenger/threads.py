"""Per-thread state the Messenger channel needs across workers, and the window rule for agent replies.

Kept in the key/value store (compare-and-set, so workers share it) and mirrored to the conversation's meta
`messenger` for the console: when the shopper last wrote (the 24 h / 7 d windows), receipts (watermarks,
only ever raised: idempotent), whether a person elsewhere (Page Inbox, another app) holds the thread, and
messages refused locally because the window had closed.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.channels.messenger.config import MessengerSettings
from bot.channels.push.documents import Doc, ShopperBook

HUMAN_AGENT = "HUMAN_AGENT"


def window(doc: Doc | None, now: float, human: bool, settings: MessengerSettings) -> tuple[str, str | None] | None:
    """(messaging_type, tag) allowed now, or None: RESPONSE within 24 h of the shopper's last message;
    MESSAGE_TAG + HUMAN_AGENT within 7 d for a person's reply, only with the permission; else closed.
    Bot-generated text never uses HUMAN_AGENT."""
    last = float((doc or {}).get("last_user_ts") or 0)
    if not last:
        return None
    age = now - last
    if age < settings.response_window_s:
        return "RESPONSE", None
    if human and settings.human_agent and age < settings.human_agent_window_s:
        return "MESSAGE_TAG", HUMAN_AGENT
    return None


class ThreadBook(ShopperBook[MessengerSettings]):
    channel = "messenger"
    kind = "thread"

    async def user_wrote(self, user_id: str) -> Doc:
        now = self.clock()
        return await self._update(user_id, lambda doc: {**doc, "last_user_ts": now})

    async def receipt(self, user_id: str, kind: str, watermark: int) -> Doc:
        field = f"{kind}_watermark"
        return await self._update(user_id, lambda doc: {**doc, field: max(int(doc.get(field) or 0), watermark)})

    async def pause(self, user_id: str, by: str, until: float) -> bool:
        """Bot silent for this thread until `until`; True if it was not paused before."""
        was = self.paused(await self.get(user_id))
        await self._update(user_id, lambda doc: {**doc, "paused_until": max(until, float(doc.get("paused_until")
                                                                                         or 0)), "paused_by": by})
        return not was

    async def resume(self, user_id: str) -> bool:
        """The bot may answer again; True if it was paused."""
        was = self.paused(await self.get(user_id))
        await self._update(user_id, lambda doc: {k: v for k, v in doc.items() if k not in ("paused_until",
                                                                                           "paused_by")})
        return was

    def paused(self, doc: Doc) -> bool:
        return float(doc.get("paused_until") or 0) > self.clock()

    async def refused(self, user_id: str, seq: int | None, reason: str) -> Doc:
        at = self.clock()
        return await self._update(user_id, lambda doc: {
            **doc, "refused": int(doc.get("refused") or 0) + 1,
            "last_refused": {"seq": seq, "reason": reason, "at": at}})

    async def failed(self, user_id: str, code: int | None, kind: str) -> Doc:
        at = self.clock()
        return await self._update(user_id, lambda doc: {**doc, "last_error": {"code": code, "kind": kind, "at": at}})

    async def _update(self, user_id: str, change: Callable[[Doc], Doc]) -> Doc:
        return await self.update(user_id, lambda current: change(current or {}))

    def view(self, doc: Doc) -> Doc:
        """What the console shows: the state plus when RESPONSE and HUMAN_AGENT replies stop being allowed."""
        last = float(doc.get("last_user_ts") or 0)
        ends = {"window_ends": last + self.settings.response_window_s if last else None,
                "human_agent_until": (last + self.settings.human_agent_window_s
                                      if last and self.settings.human_agent else None)}
        return {**doc, **ends}
