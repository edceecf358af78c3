"""The Messenger channel's app-scoped state and what happens to each webhook event after the 200.

Events are processed in a background worker per shopper (`KeyedSerial`: in order per PSID, concurrently
across shoppers; tasks referenced until done). A message or postback is kept in the inbox and deduplicated
by `mid` on arrival, then answered in the order it came by the conversation's one owner across workers
(push/inbox.py): note the time (the 24 h window), mark_seen and typing_on (separate requests, failures
ignored), one bot turn, replies with `messaging_type=RESPONSE`. Agent replies and handoff notices come from
the event bus and obey the window rule (threads.window): outside it they are refused locally and the refusal
shows in the console's meta.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import asdict
from typing import Any

import aiohttp
from aiohttp import web

from bot.agent import MAX_TEXT_CHARS, UserMessage
from bot.channels.messenger import webhook
from bot.channels.messenger.api import GraphAPI, SendError
from bot.channels.messenger.config import MessengerSettings
from bot.channels.messenger.inbound import Incoming, recipient, to_text
from bot.channels.messenger.outbound import MARKER, render, text_messages
from bot.channels.messenger.threads import ThreadBook, window
from bot.channels.push.channel import PushChannel
from bot.channels.push.claims import turn_output
from bot.channels.push.inbox import OWN_WAIT_S
from bot.dialogue import events as ev
from bot.stores import LockTimeout
from bot.stores.errors import store_unavailable

log = logging.getLogger(__name__)

Messages = list[dict[str, Any]]

RECOVER_WAIT_S = 0.5  # a sweep leaves a conversation another worker is answering to that worker


class MessengerChannel(PushChannel[MessengerSettings, Incoming, Messages]):
    name = "messenger"
    settings_model = MessengerSettings
    default_language = "en"
    api: GraphAPI | None = None  # both while the app runs (open_api)
    threads: ThreadBook | None = None

    def open_api(self, session: aiohttp.ClientSession) -> None:
        assert self.stores
        self.api = GraphAPI(self.settings, session)
        self.threads = ThreadBook(self.stores.kv, self.stores.trackers, self.settings, self.now)

    def routes(self) -> list[web.AbstractRouteDef]:
        return webhook.routes(self)  # which hands every authentic batch to accept()

    async def accept(self, batch: list[Incoming]) -> None:
        """Queue every event of a webhook batch; the request answers 200 right after this, so each shopper
        message is kept in the inbox first (see push/inbox.py), then marked seen: an event Meta sends again
        after its message was answered finds no entry but the mark, and is ignored."""
        for incoming in batch:
            cid, mid = incoming.conversation_id, incoming.mid
            if incoming.kind in ("message", "postback") and mid and not incoming.standby:
                if await self.inbox.keep(cid, mid, asdict(incoming)) and not await self.first_delivery(mid):
                    log.info("Messenger redelivery %s ignored", mid)
                    await self.inbox.done(cid, mid)
                    continue
                self.serial.submit(cid, lambda cid=cid: self._answer_kept(cid))
            else:
                self.serial.submit(cid, lambda incoming=incoming: self.process(incoming))

    async def _answer_kept(self, conversation_id: str, wait_s: float = OWN_WAIT_S) -> None:
        """Answer the conversation's kept messages in the order they came, as their one owner across workers; an
        entry another worker answered meanwhile is gone. A store failure stops here: the rest waits, in order."""
        try:
            async with self.inbox.owning(conversation_id, wait_s):
                for mid, item in await self.inbox.pending(conversation_id):
                    try:
                        await self.process(Incoming(**item))
                    except Exception as exc:
                        if store_unavailable(exc):
                            raise
                        log.exception("Messenger: message %s failed; not tried again", mid)
                    await self.inbox.done(conversation_id, mid)
        except LockTimeout:
            log.info("Messenger: another worker is answering a conversation's messages; the sweep checks later")

    async def recover(self) -> None:
        for cid in await self.inbox.left_behind():
            log.warning("Messenger: answering messages of %s left by a stopped worker", cid)
            self.serial.submit(cid, lambda cid=cid: self._answer_kept(cid, RECOVER_WAIT_S))

    async def process(self, incoming: Incoming) -> None:
        assert self.threads is not None
        if incoming.standby:
            log.info("Messenger: %s event on standby (another app owns the thread): bot silent", incoming.kind)
        elif incoming.kind in ("message", "postback"):
            await self._shopper_wrote(incoming)
        elif incoming.kind == "echo":
            await self._echo(incoming)
        elif incoming.kind in ("delivery", "read"):
            watermark = incoming.data[incoming.kind].get("watermark")
            if isinstance(watermark, int | str) and str(watermark).isdigit():
                await self.threads.receipt(incoming.user_id, incoming.kind, int(watermark))
        elif incoming.kind == "handover":
            await self._handover(incoming)
        else:
            log.info("Messenger: event without a bot turn: %s", sorted(k for k in incoming.data
                                                                         if k not in ("sender", "recipient")))

    # -- a shopper's message or postback ----------------------------------------------------------------------

    async def user_message(self, incoming: Incoming) -> UserMessage | None:
        """A message's text (attachments as a placeholder) or a button's payload for the bot."""
        found = to_text(incoming, await self.language(incoming.conversation_id), self.settings.get_started_payload)
        if found is None:
            return None
        text, metadata = found
        return UserMessage(incoming.conversation_id, text[:MAX_TEXT_CHARS], self.name, incoming.user_id,
                           incoming.mid, metadata)

    def render(self, events: list[ev.Event], language: str) -> Messages:
        """Send API messages for the bot's messages and notices among `events`, in order."""
        return render(events, self.settings, language)

    async def _shopper_wrote(self, incoming: Incoming) -> None:
        """One kept message (deduplicated on arrival): a turn a stopped worker stored is sent, not run again."""
        assert self.stores and self.threads and self.agent and self.api
        cid, user = incoming.conversation_id, incoming.user_id
        message = await self.user_message(incoming)
        if message is None:
            return
        thread = await self.threads.user_wrote(user)
        if self.threads.paused(thread):  # a person in Page Inbox / another app answers this thread
            await self._store_only(message)
            return
        if thread.get("paused_until"):
            await self._set_paused(user, False, "pause over")
        actions = self.tasks.spawn(self._seen_and_typing(recipient(user)))
        stored = await self.agent.handle(message, resend=True)
        with contextlib.suppress(TimeoutError):  # never hold the reply for typing indicators
            await asyncio.wait_for(asyncio.shield(actions), self.settings.sender_action_wait_s)
        actions.cancel()
        shown = await turn_output(self.stores, cid, stored)
        for reply in self.render(shown, await self.language(cid)):
            if not await self._send(user, reply, "RESPONSE", None):
                break

    async def _seen_and_typing(self, to: dict[str, str]) -> None:
        assert self.api
        await asyncio.gather(self.api.sender_action(to, "mark_seen"), self.api.sender_action(to, "typing_on"))

    async def _send(self, user: str, message: dict[str, Any], messaging_type: str, tag: str | None) -> bool:
        assert self.api and self.threads
        try:
            await self.api.send(recipient(user), message, messaging_type, tag)
            return True
        except SendError as exc:
            log.warning("Messenger message not delivered: %s", exc)
            await self.threads.failed(user, exc.code, exc.kind)
            return exc.kind == "uncertain"  # the rest may still go; after a refusal they would fail too

    async def _store_only(self, message: UserMessage) -> None:
        """Keep the shopper's message for the console without a bot turn (someone else is answering)."""
        assert self.stores
        trackers, cid = self.stores.trackers, message.conversation_id
        async with trackers.lock(cid):
            events = await trackers.events(cid)
            if any(e.get("event") == "user" and e.get("message_id") == message.message_id for e in events):
                return
            await trackers.append(cid, [ev.user(message.text, {}, "messenger", message.message_id,
                                                {**message.metadata, "sender": message.sender})])
            if not events:
                await trackers.set_meta(cid, channel="messenger", sender=message.sender)

    # -- echoes and handover ----------------------------------------------------------------------------------

    async def _echo(self, incoming: Incoming) -> None:
        message = incoming.data["message"]
        app_id = str(message.get("app_id") or "")
        if message.get("metadata") == MARKER or (self.settings.app_id and app_id == self.settings.app_id):
            return  # our own message coming back (F8)
        # a person in Page Inbox / Business Suite, or another app, wrote to the shopper: step aside (F9)
        await self._set_paused(incoming.user_id, True, f"echo from app {app_id or 'unknown'}",
                               self.settings.human_pause_s)

    async def _handover(self, incoming: Incoming) -> None:
        data = incoming.data
        if "pass_thread_control" in data:  # we receive it when the thread is passed to us
            await self._set_paused(incoming.user_id, False, "thread control passed to us")
        elif "take_thread_control" in data:  # we receive it when another app took the thread from us
            await self._set_paused(incoming.user_id, True, "thread control taken by another app",
                                   self.settings.human_agent_window_s)
        else:
            log.info("Messenger handover event: %s", sorted(k for k in data if k not in ("sender", "recipient")))

    async def _set_paused(self, user: str, paused: bool, reason: str, for_s: float = 0.0) -> None:
        """Pause or resume the bot for a thread; the console sees a Rasa `pause` / `resume` event."""
        assert self.threads and self.stores
        if paused:
            changed = await self.threads.pause(user, reason, self.now() + for_s)
        else:
            changed = await self.threads.resume(user)
        if changed:
            log.info("Messenger: bot %s for a thread (%s)", "paused" if paused else "resumed", reason)
            event = {"event": "pause" if paused else "resume", "timestamp": time.time(),
                     "metadata": {"channel": "messenger", "reason": reason}}
            await self.stores.trackers.append(self.prefix + user, [event])

    # -- events from outside a request (agent replies, queue, handoff) ------------------------------------------

    async def deliver(self, conversation_id: str, event: ev.Event) -> None:
        assert self.stores and self.threads
        user = conversation_id.removeprefix(self.prefix)
        human = event.get("event") == ev.AGENT_MESSAGE
        if human:
            messages = text_messages(event.get("text") or "", self.settings)
        else:  # a notice, or the rating request (its choices as quick replies)
            messages = self.render([event], await self.language(conversation_id))
        if not messages:
            return
        allowed = window(await self.threads.get(user), self.now(), human, self.settings)
        if allowed is None:
            log.info("Messenger: %s not sent, the messaging window is closed", event.get("event"))
            await self.threads.refused(user, event.get("seq"), "window closed")
            return
        for message in messages:
            if not await self._send(user, message, *allowed):
                break

    async def agent_typing(self, conversation_id: str, event: ev.Event) -> None:
        if self.api is not None:
            user = conversation_id.removeprefix(self.prefix)
            await self.api.sender_action(recipient(user), "typing_on" if event.get("on") else "typing_off")
