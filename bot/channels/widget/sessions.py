"""Shopper sessions: a server-issued random token, stored only as its SHA-256, bound to one `web:` conversation.

The token is the only credential a shopper has, so the client never chooses ids: an unknown, expired or
garbled token gets a brand-new session, never someone else's conversation (docs/channels.md S1, S2). Only the
hash is stored, so a leaked database does not let anyone resume a shopper's chat.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.stores import KeyValue

KEY_PREFIX = "widget:session:"
CONVERSATION_PREFIX = "web:"
TOKEN_BYTES = 32
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")  # token_urlsafe(32)


@dataclass(frozen=True)
class Session:
    token: str
    conversation_id: str
    created_at: float
    new: bool = False


def token_key(token: str) -> str:
    return KEY_PREFIX + hashlib.sha256(token.encode()).hexdigest()


def well_formed(token: object) -> bool:
    return isinstance(token, str) and bool(_TOKEN.match(token))


class Sessions:
    """Issue and resolve tokens; an active session's expiry slides forward (refreshed at half its life)."""

    def __init__(self, kv: KeyValue, ttl_s: float, clock: Callable[[], float] = time.time) -> None:
        self.kv = kv
        self.ttl_s = ttl_s
        self.clock = clock

    async def issue(self) -> Session:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        conversation_id = CONVERSATION_PREFIX + secrets.token_urlsafe(12)
        now = self.clock()
        await self.kv.set(token_key(token), {"conversation_id": conversation_id, "created_at": now,
                                             "expires_at": now + self.ttl_s})
        return Session(token, conversation_id, now, new=True)

    async def resolve(self, token: object) -> Session | None:
        """The session of a token, or None if it is garbled, unknown or expired (an expired one is deleted)."""
        if not well_formed(token):
            return None
        assert isinstance(token, str)
        key = token_key(token)
        doc = await self.kv.get(key)
        if not doc or not isinstance(doc.get("conversation_id"), str):
            return None
        now = self.clock()
        expires_at = float(doc.get("expires_at") or 0)
        if expires_at <= now:
            await self.kv.delete(key)
            return None
        if expires_at - now < self.ttl_s / 2:
            await self.kv.set(key, {**doc, "expires_at": now + self.ttl_s})
        return Session(token, doc["conversation_id"], float(doc.get("created_at") or now))

    async def open(self, token: object) -> Session:
        """Resume the token's session, or start a new one."""
        return await self.resolve(token) or await self.issue()

    async def revoke(self, token: object) -> None:
        if well_formed(token):
            assert isinstance(token, str)
            await self.kv.delete(token_key(token))


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer …` header."""
    if not header or not header.startswith("Bearer "):
        return None
    return header.removeprefix("Bearer ").strip() or None
