"""Outgoing mail that is never lost: each mail is kept in the key/value store (`email:outbox:<key>`, written only
if absent, so a mail made twice for the same reason is sent once) before anything tries to send it, and stays
there until the SMTP server took it. A failed send (server down, refused) is tried again with doubling waits
(`retry_base_s` × 1, 2, 4…); after `send_attempts` it is kept as failed and reported (`on_failed`), so the
agent sees it in the console and nothing disappears. Any worker may send an entry: it takes a lease on it first
(compare-and-set), so two workers never send the same mail. A sent mail leaves a record without its body for
`dedupe_ttl_s` (a day), so the same mail made again meanwhile is not sent again.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from typing import Any

import aiosmtplib

from bot.channels.email.config import EmailSettings
from bot.stores import Stores

log = logging.getLogger(__name__)

KEY = "email:outbox:"
LEASE_S = 120.0

Report = Callable[[str, dict[str, Any], str], Awaitable[None]]


class Outbox:
    def __init__(self, stores: Stores, settings: EmailSettings, on_sent: Report, on_failed: Report,
                 clock: Callable[[], float] = time.time) -> None:
        self.stores = stores
        self.settings = settings
        self.on_sent = on_sent
        self.on_failed = on_failed
        self.clock = clock
        self.wake = asyncio.Event()

    async def put(self, key: str, conversation_id: str, message: EmailMessage) -> bool:
        """Keep a mail to send; False when a mail for `key` was kept already."""
        entry = {"conversation": conversation_id, "mail": base64.b64encode(message.as_bytes()).decode(),
                 "message_id": message["Message-ID"], "to": message["To"], "subject": message["Subject"],
                 "attempts": 0, "next_at": self.clock(), "state": "pending", "lease_until": 0.0}
        kept = await self.stores.kv.cas(KEY + key, None, entry)
        self.wake.set()
        return kept

    async def entries(self) -> list[tuple[str, dict[str, Any]]]:
        return [(k.removeprefix(KEY), v) for k, v in await self.stores.kv.scan(KEY)]

    async def run(self, tick_s: float = 1.0) -> None:
        """Send what is due, for the app's lifetime."""
        while True:
            try:
                await self.send_due()
            except Exception:
                log.exception("e-mail outbox: a round failed; trying again")
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(tick_s):
                    await self.wake.wait()

    async def send_due(self) -> None:
        now = self.clock()
        for key, entry in sorted(await self.entries(), key=lambda pair: pair[1].get("next_at", 0)):
            if entry.get("state") == "sent" and entry.get("sent_at", 0) < now - self.settings.dedupe_ttl_s:
                await self.stores.kv.cas(KEY + key, entry, None)
                continue
            if entry.get("state") != "pending" or entry.get("next_at", 0) > now or entry.get("lease_until", 0) > now:
                continue
            leased = {**entry, "lease_until": now + LEASE_S}
            if not await self.stores.kv.cas(KEY + key, entry, leased):
                continue  # another worker took it
            await self._attempt(key, leased)

    async def _attempt(self, key: str, entry: dict[str, Any]) -> None:
        raw = base64.b64decode(entry["mail"])
        try:
            await self._send(raw, entry)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            attempts = int(entry.get("attempts", 0)) + 1
            error = f"{type(exc).__name__}: {exc}"[:300]
            final = attempts >= self.settings.send_attempts
            log.warning("e-mail to a shopper not sent (attempt %d of %d): %s", attempts, self.settings.send_attempts,
                        type(exc).__name__)
            updated = {**entry, "attempts": attempts, "last_error": error, "lease_until": 0.0,
                       "state": "failed" if final else "pending",
                       "next_at": self.clock() + self.settings.retry_base_s * 2 ** (attempts - 1)}
            await self.stores.kv.set(KEY + key, updated)
            if final:
                await self.on_failed(entry["conversation"], updated, error)
            return
        # a record without the mail stays a while: the same mail made again (another worker, a mail read twice)
        # finds it and is not sent twice
        await self.stores.kv.set(KEY + key, {"conversation": entry["conversation"], "state": "sent",
                                             "message_id": entry.get("message_id"), "sent_at": self.clock()})
        await self.on_sent(entry["conversation"], entry, "")

    async def _send(self, raw: bytes, entry: dict[str, Any]) -> None:
        settings = self.settings
        recipients = [address for _, address in getaddresses([entry.get("to") or ""]) if address]
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        await aiosmtplib.send(raw, sender=parseaddr(settings.address)[1], recipients=recipients,
                              hostname=settings.smtp_host, port=settings.smtp_port,
                              username=settings.smtp_user if password else None, password=password,
                              use_tls=settings.smtp_tls == "ssl", start_tls=settings.smtp_tls == "starttls",
                              timeout=settings.http_timeout_s)

    async def retry(self, key: str) -> bool:
        """Send a failed mail again (an agent asked): back to pending with its attempts reset."""
        entry = await self.stores.kv.get(KEY + key)
        if not entry or entry.get("state") != "failed":
            return False
        await self.stores.kv.set(KEY + key, {**entry, "state": "pending", "attempts": 0, "next_at": self.clock()})
        self.wake.set()
        return True
