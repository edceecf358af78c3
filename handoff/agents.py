"""Agent accounts, login sessions and presence, all kept in the key/value store (SQLite or Redis).

Passwords are stored as scrypt hashes with a per-account salt; session tokens are random and only their SHA-256
is stored, so a copy of the database does not let anyone log in. A session remembers which password it was
opened with: changing the password (or removing the account) ends every session of the account. Presence is a
status the agent chose plus when the agent was last seen: a console that went away silently stops counting as
"on duty" after presence_ttl_s.

Guessing passwords is throttled with atomic store counters, each attempt counted *before* its password is
checked, so parallel requests cannot all slip through before the first failure is written:
- per account and client address: MAX_FAILURES attempts without a success in LOCKOUT_S, then that address
  waits. Another address -- the real agent's -- is not affected, so a stranger cannot lock an agent out.
- per account, from every address: past ACCOUNT_CEILING attempts in LOCKOUT_S, addresses that never logged in
  to the account share one password check per PACE_S (guessing from many addresses is slowed, not stopped);
  addresses the agent logged in from within KNOWN_CLIENT_S are not paced.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from bot.stores import KeyValue
from handoff.errors import Invalid, LockedOut

STATUSES = ("online", "away", "offline")
ROLES = ("agent", "editor", "admin")  # editor: an agent who also publishes the FAQ (bot/knowledge/)
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
MIN_PASSWORD = 8
MAX_FAILURES = 10  # attempts per account and client address in LOCKOUT_S (a success starts again from 0)
LOCKOUT_S = 900
ACCOUNT_CEILING = 100  # attempts per account from all addresses in LOCKOUT_S before new addresses are paced
PACE_S = 1.0
KNOWN_CLIENT_S = 30 * 86400


class AccountError(Invalid):
    """A bad account request (name taken, weak password…): the message says what to change."""


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        given = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                               dklen=len(digest) // 2)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(given.hex(), digest)


# A hash to check against when the username is unknown, so a login takes as long either way.
_DUMMY_HASH = hash_password("not-a-real-password", b"kefu-dummy-salt!")


@dataclass
class AgentAccount:
    username: str
    name: str
    languages: list[str] = field(default_factory=lambda: ["zh", "en"])
    groups: list[str] = field(default_factory=list)  # empty: takes any group
    capacity: int = 3
    role: str = "agent"
    password: str = ""  # scrypt hash; never leaves the server

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def edits_knowledge(self) -> bool:
        """May publish FAQ changes (the console's Knowledge page); everyone else reads them."""
        return self.role in ("admin", "editor")

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("password")
        return data


@dataclass
class Presence:
    status: str = "offline"
    seen_at: float = 0.0

    def effective(self, now: float, ttl_s: float) -> str:
        """What routing believes: a chosen status, unless the console has not been seen for ttl_s."""
        return self.status if now - self.seen_at <= ttl_s else "offline"


class AgentDirectory:
    """Accounts (`agent:NAME`), sessions (`session:SHA256`) and presence (`presence:NAME`)."""

    def __init__(self, kv: KeyValue, session_ttl_s: float = 12 * 3600, default_capacity: int = 3) -> None:
        self.kv = kv
        self.session_ttl_s = session_ttl_s
        self.default_capacity = default_capacity

    # -- accounts ---------------------------------------------------------------------------------------------

    async def add(self, username: str, password: str, *, name: str | None = None,
                  languages: list[str] | None = None, groups: list[str] | None = None,
                  capacity: int | None = None, role: str = "agent", replace: bool = False) -> AgentAccount:
        if not _NAME.match(username):
            raise AccountError("a username is 1–64 letters, digits or _ . @ -")
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")
        if role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}")
        languages = languages or ["zh", "en"]
        if bad := [lang for lang in languages if lang not in ("zh", "en")]:
            raise AccountError(f"unsupported language {bad[0]!r}: use zh and/or en")
        account = AgentAccount(username=username, name=name or username, languages=languages,
                               groups=groups or [], capacity=capacity or self.default_capacity, role=role,
                               password=hash_password(password))
        if account.capacity < 1:
            raise AccountError("capacity must be at least 1")
        if replace:
            await self.kv.set(f"agent:{username}", asdict(account))
        elif not await self.kv.cas(f"agent:{username}", None, asdict(account)):
            raise AccountError(f"an agent named {username!r} exists already")
        return account

    async def get(self, username: str) -> AgentAccount | None:
        data = await self.kv.get(f"agent:{username}")
        return AgentAccount(**data) if data else None

    async def all(self) -> list[AgentAccount]:
        return [AgentAccount(**data) for _, data in await self.kv.scan("agent:")]

    async def set_password(self, username: str, password: str) -> AgentAccount:
        """A new password; every session opened with the old one ends (`kefu agents passwd`)."""
        account = await self.get(username)
        if account is None:
            raise AccountError(f"no agent named {username!r}")
        return await self.add(username, password, name=account.name, languages=account.languages,
                              groups=account.groups, capacity=account.capacity, role=account.role, replace=True)

    async def remove(self, username: str) -> bool:
        if await self.kv.get(f"agent:{username}") is None:
            return False
        await self.kv.delete(f"agent:{username}")
        await self.kv.delete(f"presence:{username}")
        return True

    async def authenticate(self, username: str, password: str, client: str = "unknown",
                           now: float | None = None) -> AgentAccount | None:
        """The account if the password is right, else None; LockedOut when `client` (the caller's address)
        has used up its attempts on this account, or must wait its turn (see the module's docstring)."""
        valid_name = isinstance(username, str) and bool(_NAME.match(username))
        if valid_name:
            await self._count_attempt(username, client, time.time() if now is None else now)
        account = await self.get(username) if valid_name else None
        # scrypt takes ~50 ms on purpose: off the event loop
        ok = await asyncio.to_thread(verify_password, password, account.password if account else _DUMMY_HASH)
        if not (ok and account):
            return None
        await self.kv.delete_counter(f"login-attempts:{username}:{client}")
        await self.kv.incr(f"login-known:{username}:{client}", ttl_s=KNOWN_CLIENT_S)
        return account

    async def _count_attempt(self, username: str, client: str, now: float) -> None:
        if await self.kv.incr(f"login-attempts:{username}:{client}", ttl_s=LOCKOUT_S) > MAX_FAILURES:
            raise LockedOut(f"too many wrong passwords from this address: try again within {LOCKOUT_S // 60} "
                            "minutes, or log in from another address")
        if await self.kv.incr(f"login-attempts:{username}", ttl_s=LOCKOUT_S) <= ACCOUNT_CEILING:
            return
        if await self.kv.get_counter(f"login-known:{username}:{client}"):
            return
        window = int(now // PACE_S)
        if await self.kv.incr(f"login-pace:{username}:{window}", ttl_s=2 * PACE_S) > 1:
            raise LockedOut(f"many wrong passwords for this account from many addresses: one try every "
                            f"{PACE_S:g} s; try again in {PACE_S:g} s")

    # -- sessions ---------------------------------------------------------------------------------------------

    @staticmethod
    def _session_key(token: str) -> str:
        return "session:" + hashlib.sha256(token.encode()).hexdigest()

    @staticmethod
    def _credential(account: AgentAccount) -> str:
        """Which password a session was opened with (a digest of its salted hash, never the hash itself)."""
        return hashlib.sha256(account.password.encode()).hexdigest()[:32]

    async def open_session(self, username: str, now: float | None = None) -> str:
        now = time.time() if now is None else now
        account = await self.get(username)
        if account is None:
            raise AccountError(f"no agent named {username!r}")
        token = secrets.token_urlsafe(32)
        await self.kv.set(self._session_key(token), {"username": username, "expires_at": now + self.session_ttl_s,
                                                     "credential": self._credential(account)})
        return token

    async def session_user(self, token: str, now: float | None = None) -> AgentAccount | None:
        if not token or len(token) > 200:
            return None
        session = await self.kv.get(self._session_key(token))
        now = time.time() if now is None else now
        if session is None:
            return None
        account = await self.get(session["username"])
        if session["expires_at"] <= now or account is None \
                or not hmac.compare_digest(session.get("credential", ""), self._credential(account)):
            await self.kv.delete(self._session_key(token))  # expired, or the password changed since
            return None
        return account

    async def close_session(self, token: str) -> None:
        await self.kv.delete(self._session_key(token))

    # -- presence ---------------------------------------------------------------------------------------------

    async def presence(self, username: str) -> Presence:
        data = await self.kv.get(f"presence:{username}")
        return Presence(**data) if data else Presence()

    async def presences(self) -> dict[str, Presence]:
        return {key.removeprefix("presence:"): Presence(**data) for key, data in await self.kv.scan("presence:")}

    async def set_status(self, username: str, status: str, now: float | None = None) -> Presence:
        if status not in STATUSES:
            raise AccountError(f"status must be one of {', '.join(STATUSES)}")
        presence = Presence(status, time.time() if now is None else now)
        await self.kv.set(f"presence:{username}", asdict(presence))
        return presence

    async def seen(self, username: str, now: float | None = None, min_interval_s: float = 15) -> None:
        """Refresh last-seen (at most every min_interval_s, so busy consoles don't write on every call)."""
        now = time.time() if now is None else now
        presence = await self.presence(username)
        if presence.status != "offline" and now - presence.seen_at >= min_interval_s:
            await self.kv.set(f"presence:{username}", {"status": presence.status, "seen_at": now})
