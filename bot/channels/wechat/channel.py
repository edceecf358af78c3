"""The WeChat channel (docs/channels.md §1.8): a push's conversation side, and delivery of what the bus brings.

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
from aiohttp import web

from bot.agent import MAX_TEXT_CHARS, UserMessage
from bot.channels.push.channel import PushChannel
from bot.channels.push.claims import turn_output
from bot.channels.wechat import webhook
from bot.channels.wechat.allowance import AllowanceBook
from bot.channels.wechat.api import WeChatAPI
from bot.channels.wechat.config import WeChatSettings
from bot.channels.wechat.crypto import MessageCipher
from bot.channels.wechat.inbound import Inbound, normalise
from bot.channels.wechat.outbound import Kind, Outbox, chosen_payload, remember_options, render
from bot.channels.wechat.xml import Fields
from bot.dialogue import events as ev
from bot.notices import is_rating_request

log = logging.getLogger(__name__)


class WeChatChannel(PushChannel[WeChatSettings, Inbound, tuple[str, list[str]]]):
    name = "wechat"
    settings_model = WeChatSettings
    default_language = "zh"
    api: WeChatAPI | None = None  # these three while the app runs (open_api)
    book: AllowanceBook | None = None
    outbox: Outbox | None = None

    def __init__(self, settings: WeChatSettings, clock: Callable[[], float] = time.time) -> None:
        super().__init__(settings, clock)
        aes_key = settings.encoding_aes_key  # safe mode: pushes and replies are encrypted
        self.cipher = MessageCipher(aes_key.get_secret_value(), settings.appid) if aes_key else None

    def open_api(self, session: aiohttp.ClientSession) -> None:
        assert self.stores
        self.api = WeChatAPI(self.settings, session, self.now)
        self.book = AllowanceBook(self.stores.kv, self.stores.trackers, self.settings, self.now)
        self.outbox = Outbox(self.api, self.book, self.settings)

    # -- in and out -----------------------------------------------------------------------------------------

    async def user_message(self, incoming: Inbound) -> UserMessage | None:
        """A push's text for the bot; a reply of "N" to our numbered options becomes option N's payload."""
        assert self.stores
        text = (incoming.text or "").strip()[:MAX_TEXT_CHARS]
        if not text:
            return None
        payload = await chosen_payload(self.stores.kv, incoming.openid, text, self.now(), self.settings.options_ttl_s)
        metadata = {**incoming.metadata, **({"option": text, "payload": payload} if payload else {})}
        return UserMessage(self.prefix + incoming.openid, payload or text, self.name, incoming.openid,
                           incoming.dedupe_key, metadata)

    def render(self, events: list[ev.Event], language: str) -> tuple[str, list[str]]:
        """One text for the bot's messages and notices among `events`, and the payloads of its numbered options."""
        return render(events, language)

    # -- a shopper's push -----------------------------------------------------------------------------------

    def routes(self) -> list[web.AbstractRouteDef]:
        return webhook.routes(self)  # which asks answer() for the reply to every authentic push

    async def answer(self, fields: Fields, deadline: float) -> str | None:
        """The passive reply's text, or None for `success` (duplicate, no bot turn, or answer comes later)."""
        assert self.agent and self.book and self.outbox and self.api
        openid = fields.get("FromUserName")
        cid = self.prefix + openid
        inbound = normalise(fields, await self.language(cid))
        if inbound is None:
            log.info("WeChat push of type %r/%r not handled", fields.get("MsgType"), fields.get("Event"))
            return None
        if not await self.first_delivery(inbound.dedupe_key):
            log.info("WeChat redelivery %s answered success", inbound.dedupe_key)
            return None
        if inbound.opens:
            waiting = await self.book.opened(openid, inbound.opens)
            if waiting:
                self.serial.submit(cid, lambda: self.outbox.send_items(openid, waiting, waited=True))
        message = await self.user_message(inbound)
        if message is None:
            return None
        turn = self.tasks.spawn(self.agent.handle(message), name=f"wechat-turn:{openid}")
        done, _ = await asyncio.wait({turn}, timeout=max(deadline - asyncio.get_running_loop().time(), 0))
        if not done:
            log.info("WeChat bot answer not ready within %.1f s: custom-send later", self.settings.reply_budget_s)
            await self.inbox.keep(inbound.dedupe_key, asdict(message))  # `success` now: WeChat will not resend
            self.tasks.spawn(self.api.typing(openid))
            turn.add_done_callback(lambda task: self._late(message, task))
            return None
        return await self._passive(message, turn.result())

    async def _shown(self, message: UserMessage, stored: list[ev.Event]) -> str:
        """What the shopper gets for a turn: the bot's messages and the notices this request won."""
        assert self.stores and message.sender
        cid = message.conversation_id
        text, payloads = self.render(await turn_output(self.stores, cid, stored), await self.language(cid))
        await remember_options(self.stores.kv, message.sender, payloads, self.now())
        return text

    async def _passive(self, message: UserMessage, stored: list[ev.Event]) -> str | None:
        assert self.outbox and message.sender
        parts = self.outbox.split(await self._shown(message, stored))
        if len(parts) > 1:  # one passive message only: the rest through custom-send
            rest, openid = "\n\n".join(parts[1:]), message.sender
            self.serial.submit(message.conversation_id, lambda: self.outbox.send(openid, rest, "bot"))
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
            text = await self._shown(message, stored)
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
        openid = conversation_id.removeprefix(self.prefix)
        if event.get("event") == ev.AGENT_MESSAGE:
            await self.outbox.send(openid, event.get("text") or "", "agent")
            return
        # a notice, or the rating request: rendered as in a passive reply (its choices numbered, "5" works)
        text, payloads = self.render([event], await self.language(conversation_id))
        if payloads:
            await remember_options(self.stores.kv, openid, payloads, self.now())
        kind: Kind = "rating" if is_rating_request(event) else "queue" if event.get("event") == ev.QUEUED else "notice"
        await self.outbox.send(openid, text, kind)

    async def agent_typing(self, conversation_id: str, event: ev.Event) -> None:
        if self.api is not None and event.get("on"):
            await self.api.typing(conversation_id.removeprefix(self.prefix))
