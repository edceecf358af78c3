"""The e-mail channel (`EmailChannel`): the shop's support mailbox as a conversation channel.

For each mail the reader hands over (imap.py, or the forwarding listener, listener.py):
parse it (parse.py) → find its thread's conversation (threads.py) → keep the attachments like chat uploads →
automatic mail (automatic.py) is stored and never answered → otherwise one bot turn through `Agent.handle`
(with `asks_back: false`: where the bot is unsure a person answers, not a "do you mean …?" that would cost the
shopper hours) → a confident answer goes back as one reply mail; a handoff outside business hours becomes a
ticket and an acknowledgement saying when the team is back → every outgoing mail goes through the outbox
(outbox.py: kept until sent, retried, failures shown to the agent). Only then is the mail marked read, so a
crash in between reads it again; the turn (by Message-ID) and the outbox entries (by key) make that harmless.

Agents' replies come from the event bus like on the other push channels and leave as threaded replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from bot import tasks
from bot.agent import MAX_TEXT_CHARS, UserMessage
from bot.app_keys import SETTINGS
from bot.channels.email import compose
from bot.channels.email.automatic import automatic_reason
from bot.channels.email.config import EmailSettings
from bot.channels.email.imap import Fetched, MailboxReader
from bot.channels.email.listener import ForwardListener
from bot.channels.email.outbox import Outbox
from bot.channels.email.parse import ParsedMail, parse
from bot.channels.email.quoting import new_text
from bot.channels.email.threads import ID_MARKER, ThreadBook
from bot.channels.media import placeholder
from bot.channels.push.channel import PushChannel
from bot.channels.push.documents import update_document
from bot.channels.widget.keys import WIDGET
from bot.channels.widget.upload_quota import UploadQuota
from bot.channels.widget.uploads import UploadStore
from bot.dialogue import events as ev
from bot.http import HTTPError
from bot.language import detect_language
from bot.notices import format_opening, is_notice
from bot.stores.errors import store_unavailable

log = logging.getLogger(__name__)

ORIGINAL_MAX_CHARS = 100_000  # the full original kept with the message, for the agent
_ADDRESS = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


class EmailChannel(PushChannel[EmailSettings, ParsedMail, str]):
    name = "email"
    settings_model = EmailSettings
    default_language = "zh"
    threads: ThreadBook | None = None
    outbox: Outbox | None = None
    uploads: UploadStore | None = None
    reader: MailboxReader | None = None
    listener: ForwardListener | None = None

    def open_api(self, session: aiohttp.ClientSession) -> None:
        assert self.stores
        self.threads = ThreadBook(self.stores, self.settings.address)
        self.outbox = Outbox(self.stores, self.settings, self._sent, self._failed, self.now)

    @contextlib.asynccontextmanager
    async def running(self, app: web.Application) -> AsyncIterator[None]:
        settings = self.settings
        project_dir = app[SETTINGS].project_dir if SETTINGS in app else None
        directory = settings.upload_dir if settings.upload_dir.is_absolute() or project_dir is None \
            else project_dir / settings.upload_dir
        if WIDGET in app:  # the bubble's folder: its download route serves both, its retention clears both
            directory = app[WIDGET].open.uploads.directory
        assert self.stores
        self.uploads = UploadStore(directory, self.stores.kv, settings.max_attachment_bytes,
                                   settings.attachment_types,
                                   UploadQuota(self.stores.kv, settings.max_conversation_uploads,
                                               settings.max_conversation_upload_bytes))
        async with super().running(app):
            assert self.outbox
            self.reader = MailboxReader(settings, self.receive)
            workers = [self.tasks.spawn(self.reader.run(), name="email-reader"),
                       self.tasks.spawn(self.outbox.run(), name="email-outbox"),
                       self.tasks.spawn(self._chat_tickets(), name="email-tickets")]
            if settings.listen_port is not None:
                self.listener = ForwardListener(settings.listen_host, settings.listen_port, self.receive_bytes)
                await self.listener.start()
            try:
                yield
            finally:
                if self.listener is not None:
                    await self.listener.stop()
                await tasks.stop(*workers)

    # -- one mail in -------------------------------------------------------------------------------------------

    async def receive_bytes(self, raw: bytes) -> None:
        """A whole mail from the forwarding listener (only its header when it is over the size limit)."""
        if len(raw) > self.settings.max_mail_bytes:
            header = raw.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[0]
            await self.receive(Fetched("", header[:256 * 1024] + b"\r\n\r\n", len(raw), False))
            return
        await self.receive(Fetched("", raw, len(raw), True))

    async def receive(self, fetched: Fetched) -> None:
        """Store one mail in its conversation and answer it; raises (the mail stays unread) only when the stores
        are unavailable. Any other failure keeps the mail without an answer, for the agent: one mail that trips
        the bot must not hold up the mailbox by being read again and again."""
        mail = parse(fetched.raw)
        try:
            await self._receive(fetched, mail)
        except Exception as exc:
            if store_unavailable(exc):
                raise
            log.exception("e-mail: a mail could not be answered; it is kept for the agent")
            assert self.threads
            cid = await self.threads.conversation_for(mail)
            await self._store_only(cid, mail, new_text(mail.text) or mail.subject or "[mail]",
                                   {"email": {"message_id": mail.message_id, "from": mail.sender,
                                              "subject": mail.subject, "original": mail.text[:ORIGINAL_MAX_CHARS],
                                              "failed": type(exc).__name__}})

    async def _receive(self, fetched: Fetched, mail: ParsedMail) -> None:
        assert self.threads and self.stores
        cid = await self.threads.conversation_for(mail)
        reason = automatic_reason(mail, {self.settings.address}, f"<{ID_MARKER}")
        text = new_text(mail.text) if fetched.complete else ""
        thread = await self.threads.shopper_wrote(cid, mail, text)
        language = detect_language(f"{mail.subject}\n{text}") if (text or mail.subject) else \
            await self.language(cid)
        stored_files, refused = await self._attachments(cid, mail, fetched, language, reason is None)
        metadata: dict[str, Any] = {
            "asks_back": False,
            "email": {"message_id": mail.message_id, "from": mail.sender, "name": mail.sender_name,
                      "subject": mail.subject, "date": mail.date, "original": mail.text[:ORIGINAL_MAX_CHARS],
                      "html_only": mail.html_only, "defects": mail.defects[:20], "size": fetched.size,
                      "complete": fetched.complete, **({"automatic": reason} if reason else {}),
                      **({"refused": refused} if refused else {})},
            **({"attachments": stored_files} if stored_files else {}),
        }
        shown = text or (" ".join(placeholder("file", language) for _ in stored_files) if stored_files else "") \
            or mail.subject or placeholder("file", language)
        await self.stores.trackers.set_meta(cid, email={"address": mail.sender or thread.get("address"),
                                                        "subject": thread.get("subject")})
        if reason is not None:
            log.info("e-mail: automatic mail (%s) recorded, not answered", reason)
            await self._store_only(cid, mail, shown, metadata)
            return
        if refused:
            await self._mail(f"refused:{mail.message_id}", cid, compose.refused_files(refused, self.settings, language),
                             language, automatic=True)
        if not fetched.complete:
            await self._store_only(cid, mail, shown, metadata)
            return
        message = UserMessage(cid, shown[:MAX_TEXT_CHARS], self.name, mail.sender or None, mail.message_id, metadata)
        assert self.agent
        stored = await self.agent.handle(message, resend=True)
        await self._answer(cid, mail, stored, language)

    async def user_message(self, incoming: ParsedMail) -> UserMessage | None:
        """The mail's new text as the bot's input (the channel's `receive` adds its thread and attachments)."""
        text = new_text(incoming.text) or incoming.subject
        return UserMessage("", text[:MAX_TEXT_CHARS], self.name, incoming.sender, incoming.message_id,
                           {"asks_back": False})

    def render(self, events: list[ev.Event], language: str) -> str:
        """The body of the reply mail for a turn's bot answers ("" when the bot said nothing to mail)."""
        texts = [e.get("text") or "" for e in events if e.get("event") == "bot" and not is_notice(e)]
        return compose.bot_answer(texts, language) if any(t.strip() for t in texts) else ""

    async def _answer(self, cid: str, mail: ParsedMail, stored: list[ev.Event], language: str) -> None:
        kinds = {e.get("event") for e in stored}
        language = next((str(e["parse_data"]["language"]) for e in stored if e.get("event") == "user"
                         and (e.get("parse_data") or {}).get("language")), language)
        if ev.HANDOFF_REQUESTED in kinds or ev.QUEUED in kinds or ev.AGENT_ASSIGNED in kinds:
            unavailable = next((e for e in stored if e.get("event") == ev.HANDOFF_UNAVAILABLE), None)
            if unavailable is not None and self.settings.ack_out_of_hours:
                await self._out_of_hours(cid, mail, unavailable, language)
            return  # a person answers; the console has it
        if "user" not in kinds or not any(e.get("event") == "bot" for e in stored):
            return  # a person holds the conversation: the message is theirs
        body = self.render(stored, language)
        if body:
            await self._mail(f"bot:{mail.message_id}", cid, body, language, automatic=True)

    async def _out_of_hours(self, cid: str, mail: ParsedMail, unavailable: ev.Event, language: str) -> None:
        """The team is away: the mail becomes a ticket (so it waits for them), and the shopper hears when."""
        assert self.agent
        text = new_text(mail.text) or mail.subject
        ticket_id = None
        leave = UserMessage(cid, "/leave_message" + json.dumps({"text": text[:MAX_TEXT_CHARS - 100]},
                                                             ensure_ascii=False),
                            self.name, mail.sender or None, f"{mail.message_id}#ticket", {"asks_back": False})
        try:
            for event in await self.agent.handle(leave, resend=True):
                if event.get("event") == ev.TICKET_CREATED:
                    ticket_id = event.get("ticket_id")
        except Exception:
            log.exception("e-mail: an out-of-hours mail could not be made a ticket; it stays in its conversation")
        when = format_opening(unavailable.get("next_open"), unavailable.get("timezone"), language,
                              unavailable.get("timestamp"))
        await self._mail(f"ack:{mail.message_id}", cid, compose.out_of_hours(when, ticket_id, language), language,
                         automatic=True)

    async def _attachments(self, cid: str, mail: ParsedMail, fetched: Fetched, language: str, keep: bool
                           ) -> tuple[list[dict[str, Any]], list[str]]:
        """Attachments kept like chat uploads, and what was refused (too large, a type we do not take)."""
        assert self.uploads
        if not fetched.complete:
            return [], [f"{compose.megabytes(fetched.size)} ({mail.subject or 'mail'})"]
        stored: list[dict[str, Any]] = []
        refused: list[str] = []
        for attachment in mail.attachments if keep else []:
            try:
                kept = await self.uploads.keep_bytes(cid, attachment.name, attachment.data)
                stored.append(kept.public())
            except HTTPError as exc:
                log.info("e-mail attachment refused: %s", exc)
                refused.append(f"{attachment.name} ({compose.megabytes(len(attachment.data))})")
        return stored, refused

    async def _store_only(self, cid: str, mail: ParsedMail, text: str, metadata: dict[str, Any]) -> None:
        """Keep the mail in its conversation without a bot turn (automatic mail; a mail too large to read)."""
        assert self.stores
        trackers = self.stores.trackers
        async with trackers.lock(cid):
            events = await trackers.events(cid)
            if any(e.get("event") == "user" and e.get("message_id") == mail.message_id for e in events):
                return
            await trackers.append(cid, [ev.user(text[:MAX_TEXT_CHARS], {}, self.name, mail.message_id,
                                                {**metadata, "sender": mail.sender})])
            if not events:
                await trackers.set_meta(cid, channel=self.name, sender=mail.sender or cid)

    # -- mail out ----------------------------------------------------------------------------------------------

    async def _mail(self, key: str, cid: str, body: str, language: str, automatic: bool,
                    signed_by: str | None = None) -> None:
        assert self.threads and self.outbox
        thread = await self.threads.get(cid)
        if not thread or not thread.get("address"):
            log.warning("e-mail: no address to answer a conversation; nothing sent")
            return
        message = compose.reply(self.settings, cid, thread, body, language, automatic, signed_by)
        if await self.outbox.put(key, cid, message):
            await self.threads.we_sent(cid, message["Message-ID"])

    async def deliver(self, conversation_id: str, event: ev.Event) -> None:
        """An agent's reply from the console leaves as a threaded reply; queue notices are not mailed."""
        if event.get("event") != ev.AGENT_MESSAGE or not (event.get("text") or "").strip():
            return
        language = await self.language(conversation_id)
        await self._mail(f"agent:{conversation_id}:{event.get('seq')}", conversation_id, event["text"], language,
                         automatic=False, signed_by=event.get("agent_name") or None)

    # -- tickets left from chat, answered by mail ---------------------------------------------------------------

    async def _chat_tickets(self) -> None:
        """Agents' answers to tickets left in another channel (the bubble, WeChat…) also go by mail when the
        shopper gave an address there: a chat shopper who left a message has usually left the page."""
        assert self.stores
        while True:
            try:
                async with self.stores.bus.subscribe() as subscription:
                    while not subscription.closed:
                        item = await subscription.get(timeout=30)
                        if item is None:
                            continue
                        cid, event = item
                        if (event.get("event") == ev.AGENT_MESSAGE and event.get("ticket_id")
                                and not cid.startswith(self.prefix) and isinstance(event.get("seq"), int)):
                            self.serial.submit(cid, lambda cid=cid, event=event: self._mail_ticket_answer(cid, event))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("e-mail: ticket answers' subscription failed; subscribing again")
                await asyncio.sleep(1.0)

    async def _mail_ticket_answer(self, chat_id: str, event: ev.Event) -> None:
        assert self.stores and self.threads
        ticket_id = str(event["ticket_id"])
        events = await self.stores.trackers.events(chat_id)
        ticket = next((e for e in events if e.get("event") == ev.TICKET_CREATED and e.get("ticket_id") == ticket_id),
                      None)
        texts = [str(e.get("text") or "") for e in events if e.get("event") in ("user", ev.TICKET_CREATED)]
        address = next((found for text in reversed(texts) for found in reversed(_ADDRESS.findall(text))
                        if found.lower() != self.settings.address), None)
        if address is None:
            return  # no address given: the answer waits in the chat, as before
        language = await self.agent.language(chat_id) if self.agent else "en"
        cid = self.prefix + hashlib.sha256(f"{chat_id}/{ticket_id}".encode()).hexdigest()[:12]
        subject = compose.ticket_subject(ticket_id, language)
        left = str((ticket or {}).get("text") or "")

        def start(doc: dict[str, Any] | None) -> dict[str, Any]:
            return doc or {"address": address.lower(), "name": "", "subject": subject, "references": [],
                           "last": {"message_id": None, "date": "", "text": left, "name": address.lower()},
                           "chat": chat_id, "ticket": ticket_id}

        await update_document(self.stores.kv, f"email:thread:{cid}", start)
        await self._mail(f"ticket:{chat_id}:{event['seq']}", cid, str(event.get("text") or ""), language,
                         automatic=False, signed_by=event.get("agent_name") or None)
        await self.stores.trackers.set_meta(chat_id, email={"address": address.lower(), "ticket_mailed": ticket_id})

    async def _sent(self, cid: str, entry: dict[str, Any], _error: str) -> None:
        log.info("e-mail sent in a conversation (%s)", entry.get("message_id"))

    async def _failed(self, cid: str, entry: dict[str, Any], error: str) -> None:
        """A mail that could not be sent after every attempt: the agent sees it (a note and the details)."""
        assert self.stores
        failure = {"subject": entry.get("subject"), "to": entry.get("to"), "error": error, "at": time.time(),
                   "attempts": entry.get("attempts")}
        meta = await self.stores.trackers.get_meta(cid)
        email = dict(meta.get("email") or {})
        email["failed"] = [*(email.get("failed") or []), failure][-20:]
        await self.stores.trackers.set_meta(cid, email=email)
        note = {"event": ev.AGENT_NOTE, "timestamp": time.time(), "agent": "kefu", "agent_name": "E-mail",
                "text": f"Mail not delivered after {entry.get('attempts')} attempts: {error}", "delivery_failed": True}
        await self.stores.trackers.append(cid, [note])
