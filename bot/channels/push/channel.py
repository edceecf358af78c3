"""What a push channel is: a `Channel` that takes the shopper's message, acknowledges it quickly and answers
later through the platform's API (WeChat custom-send, Messenger's Send API; an e-mail channel would be one).

For the app's lifetime it keeps the platform API open (`open_api`), the bus forwarder running (agent replies
and notices, `forwarder.py`), and a sweep that catches up what Redis pub/sub dropped and finishes inbox entries
a stopped worker left (`recover`). Outgoing work runs in order per conversation (`serial`); turns still running
at shutdown get `SHUTDOWN_GRACE_S` to hand their sends over, the sends as long again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import ClassVar, Generic, TypeVar

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from bot import tasks
from bot.channels.base import Channel, In, Out
from bot.channels.push.forwarder import BusForwarder, forwarding
from bot.channels.push.inbox import Inbox
from bot.channels.push.serial import KeyedSerial, TaskSet
from bot.dialogue import events as ev

log = logging.getLogger(__name__)

RECOVER_EVERY_S = 30.0
SHUTDOWN_GRACE_S = 5.0
S = TypeVar("S", bound="PushSettings")


class PushSettings(BaseModel):
    """What every push channel's settings have; its own model adds the platform's."""

    model_config = ConfigDict(frozen=True, hide_input_in_errors=True, extra="forbid")

    max_body_bytes: int = Field(64 * 1024, gt=0)  # a webhook body larger than this is refused
    dedupe_ttl_s: float = Field(86400.0, gt=0)  # a platform's redelivery of a message is recognised this long
    http_timeout_s: float = Field(5.0, gt=0)
    send_attempts: int = Field(3, ge=1, le=10)  # for busy / 5xx / rate limits / connection refused
    retry_base_s: float = Field(0.5, ge=0)
    notice_grace_s: float = Field(2.0, ge=0)  # the bus waits this long for a turn to send its own notices


class PushChannel(Channel[S, In, Out], Generic[S, In, Out]):
    default_language: ClassVar[str]

    def __init__(self, settings: S, clock: Callable[[], float] = time.time) -> None:
        super().__init__(settings, clock)
        self.serial = KeyedSerial(f"{self.name}-out")
        self.tasks = TaskSet()
        self.inbox = Inbox(f"{self.prefix}inbox:", self.now)
        self.forwarder: BusForwarder | None = None

    @property
    def prefix(self) -> str:
        """Conversation ids are this + the platform's user id."""
        assert self.conversation_prefix
        return self.conversation_prefix

    # -- what each push channel does -------------------------------------------------------------------------

    def open_api(self, session: aiohttp.ClientSession) -> None:
        """Open the platform's API (and the books kept beside it) for the app's lifetime."""
        raise NotImplementedError

    async def deliver(self, conversation_id: str, event: ev.Event) -> None:
        """Send an agent reply or a notice the bus brought (already claimed: this worker sends it)."""
        raise NotImplementedError

    async def agent_typing(self, conversation_id: str, event: ev.Event) -> None:
        """An agent started or stopped typing (not stored: from the bus only)."""

    async def recover(self) -> None:
        """Finish inbox entries a stopped worker left (at start-up, then every RECOVER_EVERY_S)."""

    # -- shared ---------------------------------------------------------------------------------------------

    async def first_delivery(self, message_id: str) -> bool:
        """False for a platform's redelivery of a message this channel took already (on any worker)."""
        assert self.stores
        return await self.stores.trackers.claim_message_id(f"{self.name}:in:{message_id}",
                                                           self.settings.dedupe_ttl_s)

    @contextlib.asynccontextmanager
    async def running(self, app: web.Application) -> AsyncIterator[None]:
        assert self.stores
        self.inbox.stores = self.stores
        async with aiohttp.ClientSession() as session:
            self.open_api(session)
            self.forwarder = BusForwarder(self.stores, self.prefix, self.deliver, self.serial,
                                          self.settings.notice_grace_s, on_typing=self.agent_typing)
            async with forwarding(self.forwarder):
                sweeper = asyncio.get_running_loop().create_task(self._sweeping())
                try:
                    yield
                finally:
                    await tasks.stop(sweeper)
                    await self.tasks.drain(SHUTDOWN_GRACE_S)  # turns still running hand their sends to serial
                    await self.serial.drain(SHUTDOWN_GRACE_S)

    async def _sweeping(self) -> None:
        while True:
            try:
                if self.forwarder is not None:
                    await self.forwarder.catch_up()
                await self.recover()
            except Exception:  # a store hiccup: try again next round
                log.exception("%s: recovery sweep failed", self.name)
            await asyncio.sleep(RECOVER_EVERY_S)
