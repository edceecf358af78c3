"""An SMTP server for shops that forward their support mail to kefu instead of giving it the mailbox
(`listen_port`): `aiosmtpd` takes each mail, the channel stores it, and only then does the sender hear 250 —
a mail the channel could not store gets 451, so the forwarding server tries again later."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiosmtpd.controller import Controller

log = logging.getLogger(__name__)


class _Handler:
    def __init__(self, receive: Callable[[bytes], Awaitable[None]], loop: asyncio.AbstractEventLoop) -> None:
        self.receive = receive
        self.loop = loop  # the app's: the stores live there, the SMTP server runs in its own thread

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = bytes(envelope.original_content or envelope.content or b"")
        try:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self.receive(raw), self.loop))
        except Exception:
            log.exception("e-mail: a forwarded mail could not be stored; the sender will retry")
            return "451 4.3.0 could not be stored now, try again later"
        return "250 2.0.0 OK"


class ForwardListener:
    def __init__(self, host: str, port: int, receive: Callable[[bytes], Awaitable[None]]) -> None:
        self.host, self.port, self.receive = host, port, receive
        self.controller: Controller | None = None

    async def start(self) -> None:
        handler = _Handler(self.receive, asyncio.get_running_loop())
        self.controller = Controller(handler, hostname=self.host, port=self.port,
                                     data_size_limit=60 * 1024 * 1024)
        await asyncio.get_running_loop().run_in_executor(None, self.controller.start)  # runs in its own thread
        log.info("e-mail: listening for forwarded mail on %s:%s", self.controller.hostname, self.controller.port)

    async def stop(self) -> None:
        if self.controller is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.controller.stop)
