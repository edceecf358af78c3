"""The WeChat channel's app-scoped state and the conversation side of a push (docs/channels.md §1.8).

An authentic push becomes one `UserMessage` (deduplicated by MsgId before the bot sees it: WeChat retries
after 5 s while the first delivery may still be running). If the bot's answer is ready within the budget it
is the passive reply; otherwise the webhook says `success` and the answer follows through custom-send.
Agent replies and handoff notices come from the event bus (`BusForwarder`) and always use custom-send.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict

import aiohttp

from bot.agent import MAX_TEXT_CHARS, UserMessage
from bot.channels.push import PushChannel, turn_output
from bot.channels.wechat.allowance import AllowanceBook
from bot.channels.wechat.api import WeChatAPI
from bot.channels.wechat.config import WeChatSettings
from bot.channels.wechat.crypto import MessageCipher
from bot.channels.wechat.inbound import normalise
from bot.channels.wechat.outbound import Outbox, chosen_payload, remember_options, render
from bot.channels.wechat.xml import Fields
from bot.dialogue import events as ev
from bot.notices import is_rating_request

log = logging.getLogger(__name__)

PREFIX = "wechat:"


class WeChatChannel(PushChannel):
    prefix = PREFIX
    default_language = "zh"
    settings: WeChatSettings

    def __init__(self, settings: WeChatSettings, clock: Callable[[], float] = time.time) -> None:
        super().__init__(settings, clock)
        key = settings.encoding_aes_key
        self.cipher = MessageCipher(key.get_secret_value(), settings.appid) if key else None
        self.api: WeChatAPI | None = None
        self.book: AllowanceBook | None = None
        self.outbox: Outbox | None = None

    def __repr__(self) -> str:
        return f"WeChatChannel(appid={self.settings.appid!r}, mode={self.settings.mode!r})"

    def open_api(self, session: aiohttp.ClientSession) -> None:
        assert self.stores
        self.api = WeChatAPI(self.settings, session, self.now)
        self.book = AllowanceBook(self.stores.kv, self.stores.trackers, self.settings, self.now)
        self.outbox = Outbox(self.api, self.book, self.settings)

    # -- a shopper's push -----------------------------------------------------------------------------------

    async def answer(self, fields: Fields, deadline: float) -> str | None:
        """The passive reply's text, or None for `success` (duplicate, no bot turn, or answer comes later)."""
        assert self.agent and self.stores and self.book and self.outbox and self.api
        openid = fields.get("FromUserName")
        cid = PREFIX + openid
        inbound = normalise(fields, await self.language(cid))
        if inbound is None:
            log.info("WeChat push of type %r/%r not handled", fields.get("MsgType"), fields.get("Event"))
            return None
        if not await self.stores.trackers.claim_message_id(f"wechat:in:{inbound.dedupe_key}",
                                                           self.settings.dedupe_ttl_s):
            log.info("WeChat redelivery %s answered success", inbound.dedupe_key)
            return None
        if inbound.opens:
            waiting = await self.book.opened(openid, inbound.opens)
            if waiting:
                self.serial.submit(cid, lambda: self.outbox.send_items(openid, waiting, waited=True))
        text = (inbound.text or "").strip()[:MAX_TEXT_CHARS]
        if not text:
            return None
        payload = await chosen_payload(self.stores.kv, openid, text, self.now(), self.settings.options_ttl_s)
        metadata = {**inbound.metadata, **({"option": text.strip(), "payload": payload} if payload else {})}
        message = UserMessage(cid, payload or text, "wechat", openid, inbound.dedupe_key, metadata)
        turn = self.tasks.spawn(self.agent.handle(message), name=f"wechat-turn:{openid}")
        done, _ = await asyncio.wait({turn}, timeout=max(deadline - asyncio.get_running_loop().time(), 0))
        if not done:
            log.info("WeChat bot answer not ready within %.1f s: custom-send later", self.settings.reply_budget_s)
            await self.inbox.keep(message.message_id or "", asdict(message))  # `success` now: WeChat will not resend
            self.tasks.spawn(self.api.typing(openid))
            turn.add_done_callback(lambda task: self._late(message, task))
            return None
        return await self._passive(cid, openid, turn.result())

    async def _shown(self, cid: str, openid: str, stored: list[ev.Event]) -> tuple[str, list[str]]:
        """What the shopper gets for a turn: the bot's messages and the notices this request won."""
        assert self.stores
        text, payloads = render(await turn_output(self.stores, cid, stored), await self.language(cid))
        await remember_options(self.stores.kv, openid, payloads, self.now())
        return text, payloads

    async def _passive(self, cid: str, openid: str, stored: list[ev.Event]) -> str | None:
        assert self.outbox
        text, _ = await self._shown(cid, openid, stored)
        parts = self.outbox.split(text)
        if len(parts) > 1:  # one passive message only: the rest through custom-send
            rest = "\n\n".join(parts[1:])
            self.serial.submit(cid, lambda: self.outbox.send(openid, rest, "bot"))
        return parts[0] if parts else None

    def _late(self, message: UserMessage, turn: asyncio.Task[list[ev.Event]]) -> None:
        if turn.cancelled():  # shutting down: the inbox keeps the message for the next sweep
            return
        if turn.exception() is not None:
            log.error("WeChat bot turn failed after the reply budget", exc_info=turn.exception())
            self.tasks.spawn(self.inbox.done(message.message_id or ""))
            return
        self.serial.submit(message.conversation_id, lambda: self._send_late(message, turn.result()))

    async def _send_late(self, message: UserMessage, stored: list[ev.Event]) -> None:
        assert self.outbox and message.sender
        try:
            text, _ = await self._shown(message.conversation_id, message.sender, stored)
            if text:
                await self.outbox.send(message.sender, text, "bot")
        finally:
            await self.inbox.done(message.message_id or "")

    async def recover(self) -> None:
        assert self.agent
        for key, item in await self.inbox.left_behind():
            log.warning("WeChat: answering %s, left by a stopped worker", key)
            message = UserMessage(**item)
            stored = await self.agent.handle(message, resend=True)  # a stored turn is not run again
            self.serial.submit(message.conversation_id, lambda m=message, s=stored: self._send_late(m, s))

    # -- events from outside a request (agent replies, queue, handoff) --------------------------------------

    async def deliver(self, conversation_id: str, event: ev.Event) -> None:
        assert self.stores and self.outbox
        openid = conversation_id.removeprefix(PREFIX)
        if event.get("event") == ev.AGENT_MESSAGE:
            await self.outbox.send(openid, event.get("text") or "", "agent")
            return
        # a notice, or the rating request: rendered as in a passive reply (its choices numbered, "5" works)
        text, payloads = render([event], await self.language(conversation_id))
        if payloads:
            await remember_options(self.stores.kv, openid, payloads, self.now())
        kind = "rating" if is_rating_request(event) else "queue" if event.get("event") == ev.QUEUED else "notice"
        await self.outbox.send(openid, text, kind)

    async def agent_typing(self, conversation_id: str, event: ev.Event) -> None:
        if self.api is not None and event.get("on"):
            await self.api.typing(conversation_id.removeprefix(PREFIX))
