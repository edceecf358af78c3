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
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from bot.agent import MAX_TEXT_CHARS, Agent, UserMessage
from bot.channels.push import (
    BusForwarder,
    KeyedSerial,
    TaskSet,
    claim_notices,
    describe,
    forwarding,
    turn_language,
)
from bot.channels.wechat.allowance import AllowanceBook
from bot.channels.wechat.api import WeChatAPI
from bot.channels.wechat.config import WeChatSettings
from bot.channels.wechat.crypto import MessageCipher
from bot.channels.wechat.inbound import normalise
from bot.channels.wechat.outbound import Outbox, chosen_payload, remember_options, render
from bot.channels.wechat.xml import Fields
from bot.dialogue import events as ev
from bot.state import AGENT, STORES
from bot.stores import Stores

log = logging.getLogger(__name__)

PREFIX = "wechat:"
SHUTDOWN_GRACE_S = 5.0


class WeChatChannel:
    def __init__(self, settings: WeChatSettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock  # tests move time; everything reads it through now()
        key = settings.encoding_aes_key
        self.cipher = MessageCipher(key.get_secret_value(), settings.appid) if key else None
        self.serial = KeyedSerial("wechat-out")
        self.tasks = TaskSet()
        self.agent: Agent | None = None
        self.stores: Stores | None = None
        self.api: WeChatAPI | None = None
        self.book: AllowanceBook | None = None
        self.outbox: Outbox | None = None

    def __repr__(self) -> str:
        return f"WeChatChannel(appid={self.settings.appid!r}, mode={self.settings.mode!r})"

    def now(self) -> float:
        return self.clock()

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        """cleanup_ctx: after the core's (needs the agent and stores), closed before them."""
        self.agent, self.stores = app[AGENT], app[STORES]
        async with aiohttp.ClientSession() as session:
            self.api = WeChatAPI(self.settings, session, self.now)
            self.book = AllowanceBook(self.stores.kv, self.stores.trackers, self.settings, self.now)
            self.outbox = Outbox(self.api, self.book, self.settings)
            forwarder = BusForwarder(self.stores, PREFIX, self.deliver, self.serial, self.settings.notice_grace_s,
                                     on_typing=self._agent_typing)
            async with forwarding(forwarder):
                yield
                await self.tasks.drain(SHUTDOWN_GRACE_S)
                await self.serial.drain(SHUTDOWN_GRACE_S)

    # -- a shopper's push -----------------------------------------------------------------------------------

    async def answer(self, fields: Fields, deadline: float) -> str | None:
        """The passive reply's text, or None for `success` (duplicate, no bot turn, or answer comes later)."""
        assert self.agent and self.stores and self.book and self.outbox and self.api
        openid = fields.get("FromUserName")
        cid = PREFIX + openid
        meta = await self.stores.trackers.get_meta(cid)
        inbound = normalise(fields, meta.get("language") or "zh")
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
            self.tasks.spawn(self.api.typing(openid))
            turn.add_done_callback(lambda task: self._late(cid, openid, task))
            return None
        return await self._passive(cid, openid, turn.result())

    async def _shown(self, cid: str, openid: str, stored: list[ev.Event]) -> tuple[str, list[str]]:
        """What the shopper gets for a turn: the bot's messages and the notices this request won."""
        assert self.stores
        claimed = {id(e) for e in await claim_notices(self.stores, cid, stored)}
        shown = [e for e in stored if e.get("event") == "bot" or id(e) in claimed]
        text, payloads = render(shown, turn_language(stored, "zh"))
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

    def _late(self, cid: str, openid: str, turn: asyncio.Task[list[ev.Event]]) -> None:
        if turn.cancelled():
            return
        if turn.exception() is not None:
            log.error("WeChat bot turn failed after the reply budget", exc_info=turn.exception())
            return
        self.serial.submit(cid, lambda: self._send_late(cid, openid, turn.result()))

    async def _send_late(self, cid: str, openid: str, stored: list[ev.Event]) -> None:
        assert self.outbox
        text, _ = await self._shown(cid, openid, stored)
        if text:
            await self.outbox.send(openid, text, "bot")

    # -- events from outside a request (agent replies, queue, handoff) --------------------------------------

    async def deliver(self, conversation_id: str, event: ev.Event) -> None:
        assert self.stores and self.outbox
        language = event.get("language") or (await self.stores.trackers.get_meta(conversation_id)).get("language")
        text = describe(event, language or "zh")
        if not text:
            return
        kind = {ev.AGENT_MESSAGE: "agent", ev.QUEUED: "queue"}.get(event["event"], "notice")
        await self.outbox.send(conversation_id.removeprefix(PREFIX), text, kind)  # type: ignore[arg-type]

    async def _agent_typing(self, conversation_id: str, event: ev.Event) -> None:
        if self.api is not None and event.get("on"):
            await self.api.typing(conversation_id.removeprefix(PREFIX))
