"""The mailbox reader: unseen mail from the shop's IMAP folder, each handed to the channel and marked \\Seen only
after the channel stored it (at least once: a reader that stops or loses the server in between reads the mail
again, and the channel recognises it by its Message-ID).

`aioimaplib` speaks IMAP; implicit TLS (IMAPS) unless `imap_tls` is off (a local test server). While connected
the reader waits with IDLE when the server offers it (new mail arrives in a second), otherwise it polls every
`poll_interval_s`; IDLE is renewed every `idle_renew_s`, as a safety net. A lost connection or a refused login is logged
(never the password) and retried with doubling waits up to `reconnect_max_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aioimaplib import aioimaplib

from bot.channels.email.config import EmailSettings

log = logging.getLogger(__name__)

_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_UID = re.compile(rb"UID (\d+)")


@dataclass
class Fetched:
    uid: str
    raw: bytes  # the whole mail, or only its header when it is larger than max_mail_bytes
    size: int
    complete: bool


Handler = Callable[[Fetched], Awaitable[None]]


async def _log_out(client: aioimaplib.IMAP4) -> None:
    """The server reads no LOGOUT during IDLE: a reader stopped while idling ends it (DONE) first."""
    with contextlib.suppress(Exception):
        if client.has_pending_idle():
            client.idle_done()
        async with asyncio.timeout(2):
            await client.logout()


class LoginRefused(Exception):
    """The server refused the user name or password (the message names neither)."""


class MailboxReader:
    def __init__(self, settings: EmailSettings, handle: Handler) -> None:
        self.settings = settings
        self.handle = handle
        self.connected = asyncio.Event()  # tests and /health: the reader is logged in and watching
        self.rounds = 0  # mailbox checks done (each after the connection's first)
        self._lost = asyncio.Event()

    async def run(self) -> None:
        backoff = 1.0
        while True:
            client = None
            try:
                client = await self._connect()
                backoff = 1.0
                await self._watch(client)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected.clear()
                log.warning("e-mail: mailbox %s:%s unavailable (%s); trying again in %.0f s", self.settings.imap_host,
                            self.settings.imap_port, _describe(exc), backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.settings.reconnect_max_s)
            finally:
                self.connected.clear()
                if client is not None:
                    await _log_out(client)

    async def _connect(self) -> aioimaplib.IMAP4:
        settings = self.settings
        self._lost = asyncio.Event()
        lost = self._lost

        def on_lost(_exc: Exception | None) -> None:
            lost.set()

        if settings.imap_tls:
            client = aioimaplib.IMAP4_SSL(settings.imap_host, settings.imap_port, timeout=settings.imap_timeout_s,
                                          ssl_context=ssl.create_default_context())
            client.protocol.conn_lost_cb = on_lost
        else:
            client = aioimaplib.IMAP4(settings.imap_host, settings.imap_port, timeout=settings.imap_timeout_s,
                                      conn_lost_cb=on_lost)
        await client.wait_hello_from_server()
        assert settings.imap_user
        login = await client.login(settings.imap_user, settings.imap_password.get_secret_value())
        if login.result != "OK":
            raise LoginRefused(f"login as {settings.imap_user} refused")
        selected = await client.select(_quote(settings.imap_folder))
        if selected.result != "OK":
            raise LoginRefused(f"folder {settings.imap_folder} cannot be opened")
        log.info("e-mail: reading %s on %s (%s)", settings.imap_folder, settings.imap_host,
                 "IDLE" if self._idles(client) else f"polling every {settings.poll_interval_s:.0f} s")
        return client

    def _idles(self, client: aioimaplib.IMAP4) -> bool:
        return self.settings.imap_idle and client.has_capability("IDLE")

    async def _watch(self, client: aioimaplib.IMAP4) -> None:
        self.connected.set()
        while not self._lost.is_set():
            # until a search finds nothing: a mail that arrived while others were handled was announced in the
            # replies to those commands, not to IDLE, which would then wait for the next mail (or the renewal)
            while await self.read_unseen(client):
                self.rounds += 1
            self.rounds += 1
            if self._idles(client):
                await self._idle(client)
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.poll_interval_s):
                        await self._lost.wait()
                await client.noop()  # raises on a dead connection
        raise ConnectionError("connection lost")

    async def _idle(self, client: aioimaplib.IMAP4) -> None:
        idle = await client.idle_start(timeout=self.settings.idle_renew_s)
        lost = asyncio.ensure_future(self._lost.wait())
        push = asyncio.ensure_future(client.wait_server_push(timeout=self.settings.idle_renew_s + 5))
        try:
            await asyncio.wait({lost, push}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            push.cancel()
        if self._lost.is_set():
            idle.cancel()
            return
        log.debug("e-mail: IDLE woke: %s", push.result() if push.done() and not push.cancelled() else "timeout")
        client.idle_done()
        async with asyncio.timeout(self.settings.imap_timeout_s):
            await idle

    async def read_unseen(self, client: aioimaplib.IMAP4) -> int:
        """Hand every unseen mail to the channel, oldest first; each marked \\Seen once the channel has it."""
        found = await client.uid_search("UNSEEN", charset=None)
        if found.result != "OK":
            raise ConnectionError("SEARCH failed")
        uids = [uid for line in found.lines[:1] for uid in bytes(line).split() if uid.isdigit()]
        log.debug("e-mail: %d unseen in %s", len(uids), self.settings.imap_folder)
        for uid in (u.decode() for u in uids):
            fetched = await self._fetch(client, uid)
            if fetched is None:
                continue
            await self.handle(fetched)  # raises (and the mail stays unseen) when it could not be stored
            stored = await client.uid("store", uid, "+FLAGS.SILENT (\\Seen)")
            if stored.result != "OK":
                raise ConnectionError("STORE failed")
        return len(uids)

    async def _fetch(self, client: aioimaplib.IMAP4, uid: str) -> Fetched | None:
        sized = await client.uid("fetch", uid, "(RFC822.SIZE)")
        match = next((_SIZE.search(bytes(line)) for line in sized.lines if _SIZE.search(bytes(line))), None)
        if sized.result != "OK" or match is None:
            return None  # expunged meanwhile
        size = int(match.group(1))
        complete = size <= self.settings.max_mail_bytes
        part = "BODY.PEEK[]" if complete else "BODY.PEEK[HEADER]"
        response = await client.uid("fetch", uid, f"({part})")
        if response.result != "OK":
            raise ConnectionError("FETCH failed")
        literals = [bytes(line) for line in response.lines if isinstance(line, bytearray)]
        if not literals:
            return None
        return Fetched(uid, literals[0], size, complete)


def _quote(folder: str) -> str:
    return folder if re.fullmatch(r"[A-Za-z0-9_./-]+", folder) else '"' + folder.replace('"', '\\"') + '"'


def _describe(exc: BaseException) -> str:
    """What went wrong, for the log: the exception's kind and its words, which never carry the password."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text and len(text) < 200 else type(exc).__name__
