"""The channel interface fits a channel that is neither a webhook nor a socket: a mailbox reader started with the
app, answering later (what an e-mail channel will be). It is written here only with the interface -- no routes --
and mounted on the real app; the shopper gets the bot's answer, then an agent's reply through the bus."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from bot.agent import UserMessage
from bot.app_keys import AGENT, STORES
from bot.channels.push.channel import PushChannel, PushSettings
from bot.channels.push.claims import turn_output
from bot.dialogue import events as ev
from bot.server import ServerSettings, create_app

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Mail:
    message_id: str
    sender: str
    subject: str
    body: str


class MailboxSettings(PushSettings):
    address: str = "service@demo-shop.example"


class Mailbox(PushChannel[MailboxSettings, Mail, str]):
    name = "mailbox"
    settings_model = MailboxSettings
    default_language = "en"

    def __init__(self, settings: MailboxSettings) -> None:
        super().__init__(settings)
        self.arriving: asyncio.Queue[Mail] = asyncio.Queue()  # what an IMAP poll would find
        self.sent: list[tuple[str, str]] = []  # what SMTP would send: (to, body)

    def open_api(self, session: aiohttp.ClientSession) -> None:
        """An SMTP connection would open here."""

    @contextlib.asynccontextmanager
    async def running(self, app: web.Application) -> AsyncIterator[None]:
        async with super().running(app):
            reader = self.tasks.spawn(self._read())
            yield
            reader.cancel()

    async def _read(self) -> None:
        assert self.agent and self.stores
        while True:
            mail = await self.arriving.get()
            message = await self.user_message(mail)
            stored = await self.agent.handle(message)
            shown = await turn_output(self.stores, message.conversation_id, stored)
            self.sent.append((mail.sender, self.render(shown, await self.language(message.conversation_id))))

    async def user_message(self, incoming: Mail) -> UserMessage:
        return UserMessage(self.prefix + incoming.sender, incoming.body, self.name, incoming.sender,
                           incoming.message_id, {"subject": incoming.subject})

    def render(self, events: list[ev.Event], language: str) -> str:
        return "\n\n".join(e["text"] for e in events if e.get("text"))

    async def deliver(self, conversation_id: str, event: ev.Event) -> None:
        language = await self.language(conversation_id)
        self.sent.append((conversation_id.removeprefix(self.prefix), self.render([event], language)))


async def test_a_mailbox_reader_answers_through_the_same_interface(aiohttp_client, starter_model, tmp_path):
    settings = ServerSettings.for_project(ROOT, model_path=starter_model, db_path=tmp_path / "kefu.db")
    settings.redis_url = None
    app = create_app(settings)
    mailbox = Mailbox(MailboxSettings(notice_grace_s=0.1))
    mailbox.mount(app)
    client = await aiohttp_client(app)
    assert client.app[Mailbox.key] is mailbox

    await mailbox.arriving.put(Mail("<m1@example>", "amy@example.com", "Shipping", "How much is shipping?"))
    shipping = next(e for e in client.app[AGENT].faq_entries() if e.id == "shipping_cost").answer("en")
    for _ in range(200):
        if mailbox.sent:
            break
        await asyncio.sleep(0.05)
    assert mailbox.sent == [("amy@example.com", shipping)]

    await client.app[STORES].trackers.append("mailbox:amy@example.com", [
        {"event": ev.AGENT_MESSAGE, "text": "Your order ships today.", "agent": "li"}])
    for _ in range(200):
        if len(mailbox.sent) == 2:
            break
        await asyncio.sleep(0.05)
    assert mailbox.sent[1] == ("amy@example.com", "Your order ships today.")
    meta = await client.app[STORES].trackers.get_meta("mailbox:amy@example.com")
    assert meta["channel"] == "mailbox"
