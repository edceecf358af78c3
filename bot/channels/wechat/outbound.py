"""What the shopper gets on WeChat: bot events as one text, and custom-send within the allowance.

Buttons become numbered options ("1. 查订单") because a passive reply is a single text message and WeChat's
clickable `msgmenu` is unavailable to many accounts; the option payloads are remembered per shopper so a
reply of "1" is routed by payload (`remember_options` / `chosen_payload`).
"""

from __future__ import annotations

import logging
import re
from typing import Any, Literal

from bot.channels.push.text import split_text, utf8_len
from bot.channels.wechat.allowance import AllowanceBook
from bot.channels.wechat.api import QUOTA_USED, WINDOW_CLOSED, DeliveryUncertain, WeChatAPI, WeChatAPIError
from bot.channels.wechat.config import WeChatSettings
from bot.dialogue import events as ev
from bot.notices import NOTICE_KINDS, shopper_text
from bot.stores import KeyValue

log = logging.getLogger(__name__)

Kind = Literal["bot", "agent", "notice", "queue", "rating"]
# stale once the shopper writes again (their place in line; a rating request, answerable only before that):
# sent now or not at all, never kept pending
PASSING: set[str] = {"queue", "rating"}
_NUMBER = re.compile(r"\s*([0-9０-９]{1,2})\s*[.。、]?\s*")


def render(events: list[ev.Event], language: str) -> tuple[str, list[str]]:
    """The bot's messages and handoff notices among `events` joined into one text, and the payloads of its
    numbered options."""
    blocks: list[str] = []
    payloads: list[str] = []
    for event in events:
        if event.get("event") in NOTICE_KINDS:
            notice = shopper_text(event, language)
            if notice:
                blocks.append(notice)
            continue
        if event.get("event") != "bot":
            continue
        data = event.get("data") or {}
        lines = [event["text"]] if event.get("text") else []
        if isinstance(data.get("image"), str):
            lines.append(data["image"])
        for button in (data.get("buttons") or data.get("quick_replies") or []):
            if isinstance(button, dict) and button.get("title") and button.get("payload"):
                payloads.append(str(button["payload"]))
                lines.append(f"{len(payloads)}. {button['title']}")
        if lines:
            blocks.append("\n".join(lines))
    return "\n\n".join(blocks), payloads


def options_key(openid: str) -> str:
    return f"wechat:options:{openid}"


async def remember_options(kv: KeyValue, openid: str, payloads: list[str], now: float) -> None:
    if payloads:
        await kv.set(options_key(openid), {"payloads": payloads, "at": now})
    else:
        await kv.delete(options_key(openid))


async def chosen_payload(kv: KeyValue, openid: str, text: str, now: float, ttl_s: float) -> str | None:
    """The payload of option N when the shopper answered just "N" to our last numbered options."""
    match = _NUMBER.fullmatch(text)
    if not match:
        return None
    options = await kv.get(options_key(openid))
    if not options or now - float(options.get("at") or 0) > ttl_s:
        return None
    number = int(match.group(1).translate(str.maketrans("０１２３４５６７８９", "0123456789")))
    payloads = options.get("payloads") or []
    return payloads[number - 1] if 1 <= number <= len(payloads) else None


class Outbox:
    """Sends texts through custom-send within the shopper's allowance; what cannot go now waits (pending)."""

    def __init__(self, api: WeChatAPI, book: AllowanceBook, settings: WeChatSettings) -> None:
        self.api = api
        self.book = book
        self.settings = settings

    def split(self, text: str) -> list[str]:
        return split_text(text, self.settings.text_max_bytes, utf8_len)

    async def send(self, openid: str, text: str, kind: Kind) -> None:
        await self.send_items(openid, [{"text": part, "kind": kind} for part in self.split(text)])

    async def send_items(self, openid: str, items: list[dict[str, Any]], waited: bool = False) -> None:
        """Send in order; `waited`: these come from `pending` (older than anything that waits now)."""
        for index, item in enumerate(items):
            keep = self.settings.queue_reserve if item.get("kind") == "queue" else 0
            if not await self.book.reserve(openid, keep=keep):
                if item.get("kind") in PASSING:
                    log.info("WeChat: no allowance to spare for a %s message to a shopper; skipped", item["kind"])
                    continue
                await self.book.park(openid, _keepable(items[index:]), front=waited)
                return
            try:
                await self.api.send_text(openid, item["text"], self._kf(item))
            except WeChatAPIError as exc:
                if exc.code in (QUOTA_USED, WINDOW_CLOSED):
                    log.info("WeChat refused a customer-service message (%s): kept pending", exc.code)
                    await self.book.refused(openid, exc.code, _keepable(items[index:]))
                    return
                await self.book.refund(openid)
                log.error("WeChat customer-service message undeliverable: %s", exc)
            except DeliveryUncertain as exc:
                log.warning("WeChat customer-service message may not have arrived (not resent): %s", exc)

    def _kf(self, item: dict[str, Any]) -> str | None:
        return self.settings.kf_account if item.get("kind") == "agent" else None


def _keepable(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for item in items if item.get("kind") not in PASSING]

