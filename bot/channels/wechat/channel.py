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
from typing import Literal

import aiohttp
from aiohttp import web

from bot.agent import MAX_TEXT_CHARS, UserMessage
from bot.channels.push.channel import PushChannel
from bot.channels.push.claims import turn_output
from bot.channels.push.inbox import OWN_WAIT_S
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
from bot.stores import LockTimeout
from bot.stores.errors import UNAVAILABLE, store_unavailable

log = logging.getLogger(__name__)

TURN_LOCK_WAIT_S = 30.0  # a delivery waits this long for another delivery of its message (then: an error status)
RECOVER_WAIT_S = 0.5  # a sweep leaves a conversation another worker is answering to that worker


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
        """The passive reply's text, or None for `success` (duplicate, no bot turn, or answer comes later).

        Raises a store error (LockTimeout too) when the message is not durably kept: the webhook then answers
        with an error status and WeChat sends the push again (it never does after `success`). The MsgId is
        marked answered (`_answering`) only once this delivery has the answer in hand or kept in the inbox, so a
        delivery that fails or dies before that leaves the retry to answer it."""
        assert self.agent and self.api
        openid = fields.get("FromUserName")
        cid = self.prefix + openid
        inbound = normalise(fields, await self.language(cid))
        if inbound is None:
            log.info("WeChat push of type %r/%r not handled", fields.get("MsgType"), fields.get("Event"))
            return None
        message = await self.user_message(inbound)
        if message is None:
            return None
        key, started = inbound.dedupe_key, asyncio.Event()
        turn = self.tasks.spawn(self._turn(message, started), name=f"wechat-turn:{openid}")
        done, _ = await asyncio.wait({turn}, timeout=max(deadline - asyncio.get_running_loop().time(), 0))
        if done:
            # the answer in hand before the MsgId is marked: a store failure while reading it leaves the mark
            # to WeChat's retry, which then answers (once marked, nothing after can fail the delivery)
            shown = await self._shown(message, turn.result())
            if not await self._answering(inbound):
                log.info("WeChat redelivery %s answered success", key)
                return None
            text = self._passive(message, shown)
            await self._clear(cid, key)  # a delivery before this one may have kept it, then died
            return text
        if not started.is_set():  # another delivery of this message is on it (or was, on a worker that died)
            turn.cancel()  # given up: this delivery never runs the turn later
            if await self.inbox.holds(cid, key):
                return None  # acknowledged and kept: that delivery, or the sweep, answers it
            raise LockTimeout(f"{self.prefix}turn:{key}", self.settings.reply_budget_s)
        log.info("WeChat bot answer not ready within %.1f s: custom-send later", self.settings.reply_budget_s)
        if not await self.inbox.keep(cid, key, asdict(message)):  # before `success`: WeChat will not resend
            return None  # another delivery kept it: that one, or the sweep, answers it
        if not await self._answering(inbound):  # answered by a passive reply meanwhile
            await self.inbox.done(cid, key)
            return None
        self.tasks.spawn(self.api.typing(openid))
        turn.add_done_callback(lambda task: self._late(message, task))
        return None

    async def _answering(self, inbound: Inbound) -> bool:
        """Mark the MsgId answered by this delivery (False: another delivery did), and open the allowance."""
        if not await self.first_delivery(inbound.dedupe_key):
            return False
        if inbound.opens:
            try:
                await self._opened(inbound.openid, inbound.opens)
            except UNAVAILABLE as exc:  # marked answered: the reply must still go out; custom-send waits
                log.warning("WeChat: could not open the allowance of %s (%r)", inbound.openid, exc)
        return True

    async def _clear(self, conversation_id: str, key: str) -> None:
        """Best effort: the answer is ready, so a store failure here must not turn it into an error status."""
        try:
            await self.inbox.done(conversation_id, key)
        except UNAVAILABLE as exc:
            log.warning("WeChat: could not clear inbox entry %s (%r); the sweep may answer it again", key, exc)

    async def _turn(self, message: UserMessage, started: asyncio.Event) -> list[ev.Event]:
        """The message's turn: run, or the one stored before (`resend`).

        One delivery of a message at a time, across workers, under a store lock that expires with a worker that
        dies; so a delivery that waits too long for it knows another one is on the message."""
        assert self.agent and self.stores
        async with self.stores.trackers.lock(f"{self.prefix}turn:{message.message_id}", TURN_LOCK_WAIT_S):
            started.set()
            return await self.agent.handle(message, resend=True)

    async def _opened(self, openid: str, by: Literal["message", "event"]) -> None:
        """The shopper wrote: a new custom-send allowance, and what waited for it goes out."""
        assert self.book and self.outbox
        waiting = await self.book.opened(openid, by)
        if waiting:
            self.serial.submit(self.prefix + openid, lambda: self.outbox.send_items(openid, waiting, waited=True))

    async def _shown(self, message: UserMessage, stored: list[ev.Event]) -> str:
        """What the shopper gets for a turn: the bot's messages and the notices this request won."""
        assert self.stores and message.sender
        cid = message.conversation_id
        text, payloads = self.render(await turn_output(self.stores, cid, stored), await self.language(cid))
        await remember_options(self.stores.kv, message.sender, payloads, self.now())
        return text

    def _passive(self, message: UserMessage, shown: str) -> str | None:
        """The passive reply from what the shopper is shown; what does not fit goes by custom-send."""
        assert self.outbox and message.sender
        parts = self.outbox.split(shown)
        if len(parts) > 1:  # one passive message only: the rest through custom-send
            rest, openid = "\n\n".join(parts[1:]), message.sender
            self.serial.submit(message.conversation_id, lambda: self.outbox.send(openid, rest, "bot"))
        return parts[0] if parts else None

    def _late(self, message: UserMessage, turn: asyncio.Task[list[ev.Event]]) -> None:
        cid, key = message.conversation_id, message.message_id or ""
        if turn.cancelled():  # shutting down: the inbox keeps the message for the next sweep
            return
        failed = turn.exception()
        if failed is not None and store_unavailable(failed):
            log.warning("WeChat bot turn failed after the reply budget (%r); the sweep answers it", failed)
            return
        if failed is not None:
            log.error("WeChat bot turn failed after the reply budget", exc_info=failed)
            self.tasks.spawn(self.inbox.done(cid, key))
            return
        self.serial.submit(cid, lambda: self._send_owned(message, turn.result()))

    async def _send_owned(self, message: UserMessage, stored: list[ev.Event]) -> None:
        """Send a late answer as the conversation's one owner, like the sweep, and only while its entry is kept:
        a sweep that took it for left behind (a turn slower than RECOVER_AFTER_S under overload) and this
        worker never both send it."""
        cid, key = message.conversation_id, message.message_id or ""
        try:
            async with self.inbox.owning(cid, OWN_WAIT_S):
                if await self.inbox.holds(cid, key):
                    await self._send_late(message, stored)
        except LockTimeout:
            log.info("WeChat: another worker holds a conversation's kept messages; the sweep sends this answer")

    async def _send_late(self, message: UserMessage, stored: list[ev.Event]) -> None:
        assert self.outbox and message.sender
        try:
            text = await self._shown(message, stored)
            if text:
                await self.outbox.send(message.sender, text, "bot")
        except Exception as exc:
            if store_unavailable(exc):
                raise  # kept: the sweep tries again
            log.exception("WeChat: a late answer failed; not tried again")
        await self.inbox.done(message.conversation_id, message.message_id or "")

    async def recover(self) -> None:
        for cid in await self.inbox.left_behind():
            log.warning("WeChat: answering messages of %s left by a stopped worker", cid)
            self.serial.submit(cid, lambda cid=cid: self._answer_kept(cid))

    async def _answer_kept(self, conversation_id: str, wait_s: float = RECOVER_WAIT_S) -> None:
        """Answer by custom-send the conversation's kept messages, in order, as their one owner across workers;
        an entry another worker answered meanwhile is gone."""
        assert self.agent
        try:
            async with self.inbox.owning(conversation_id, wait_s):
                for key, item in await self.inbox.pending(conversation_id):
                    message = UserMessage(**item)
                    stored = await self.agent.handle(message, resend=True)  # a stored turn is not run again
                    if await self.first_delivery(key) and message.sender:  # not marked: its allowance not opened
                        await self._opened(message.sender, "event" if "event" in message.metadata else "message")
                    await self._send_late(message, stored)
        except LockTimeout:
            log.info("WeChat: another worker is answering a conversation's kept messages")

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
