"""Fake WeChat and Graph API servers: small aiohttp apps on 127.0.0.1 that record every call and can be told
to fail (token expired, 45015, 45047, -1, 5xx, slow). They stand for the internet the tests cannot reach.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    answered: Any = None
    status: int = 200


@dataclass
class Scripted:
    status: int = 200
    body: dict[str, Any] | None = None
    delay_s: float = 0.0


@dataclass
class _Base:
    calls: list[Call] = field(default_factory=list)
    scripts: dict[str, deque[Scripted]] = field(default_factory=dict)
    url: str = ""  # http://127.0.0.1:<port>, set when the fixture starts the server
    server: Any = None

    def fail(self, endpoint: str, *, times: int = 1, status: int = 200, body: dict[str, Any] | None = None,
             delay_s: float = 0.0) -> None:
        """The next `times` calls to `endpoint` answer this instead of the normal answer."""
        self.scripts.setdefault(endpoint, deque()).extend(Scripted(status, body, delay_s) for _ in range(times))

    async def _scripted(self, endpoint: str, call: Call) -> web.Response | None:
        queue = self.scripts.get(endpoint)
        if not queue:
            return None
        script = queue.popleft()
        if script.delay_s:
            await asyncio.sleep(script.delay_s)
        if script.body is None:
            call.status, call.answered = script.status, None
            return web.Response(status=script.status, text="scripted failure")
        call.status, call.answered = script.status, script.body
        return web.json_response(script.body, status=script.status)

    async def _record(self, request: web.Request) -> Call:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        call = Call(request.method, request.path, dict(request.query), body)
        self.calls.append(call)
        return call

    async def wait_for(self, predicate, timeout_s: float = 10.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting; calls so far: {[(c.path, c.body) for c in self.calls]}")
            await asyncio.sleep(0.02)


@dataclass
class FakeWeChat(_Base):
    """`/cgi-bin/stable_token`, `/cgi-bin/token`, `/cgi-bin/message/custom/send`, `/cgi-bin/message/custom/typing`.

    Endpoints for `fail()`: "token", "send", "typing". Tokens are T1, T2, …; `expire_token()` makes the current
    one answer 42001 and the next token request hand out a new one. Sends with an unknown token get 40001.
    """

    current: str | None = None
    expired: set[str] = field(default_factory=set)
    issued: int = 0
    expires_in: int = 7200

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/cgi-bin/stable_token", self._stable_token)
        app.router.add_get("/cgi-bin/token", self._classic_token)
        app.router.add_post("/cgi-bin/message/custom/send", self._send)
        app.router.add_post("/cgi-bin/message/custom/typing", self._typing)
        return app

    def expire_token(self) -> None:
        if self.current:
            self.expired.add(self.current)
        self.current = None

    def _issue(self) -> str:
        self.issued += 1
        self.current = f"T{self.issued}"
        return self.current

    async def _stable_token(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        scripted = await self._scripted("token", call)
        if scripted is not None:
            return scripted
        body = call.body or {}
        token = self._issue() if self.current is None or body.get("force_refresh") else self.current
        return web.json_response({"access_token": token, "expires_in": self.expires_in})

    async def _classic_token(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        scripted = await self._scripted("token", call)
        if scripted is not None:
            return scripted
        if self.current:
            self.expired.add(self.current)
        return web.json_response({"access_token": self._issue(), "expires_in": self.expires_in})

    def _token_error(self, call: Call) -> web.Response | None:
        token = call.query.get("access_token")
        if token and token == self.current:
            return None
        code = 42001 if token in self.expired else 40001
        call.answered = {"errcode": code, "errmsg": "access_token expired" if code == 42001 else "invalid credential"}
        return web.json_response(call.answered)

    async def _send(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        return self._token_error(call) or await self._scripted("send", call) or self._ok(call)

    async def _typing(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        return self._token_error(call) or await self._scripted("typing", call) or self._ok(call)

    @staticmethod
    def _ok(call: Call) -> web.Response:
        call.answered = {"errcode": 0, "errmsg": "ok"}
        return web.json_response(call.answered)

    def sends(self, openid: str | None = None, delivered_only: bool = True) -> list[Call]:
        return [c for c in self.calls if c.path.endswith("/custom/send")
                and (openid is None or (c.body or {}).get("touser") == openid)
                and (not delivered_only or (c.status == 200 and (c.answered or {}).get("errcode") == 0))]

    def texts(self, openid: str | None = None) -> list[str]:
        return [c.body["text"]["content"] for c in self.sends(openid)]

    def token_calls(self) -> list[Call]:
        return [c for c in self.calls if c.path in ("/cgi-bin/stable_token", "/cgi-bin/token")]


@dataclass
class FakeGraph(_Base):
    """`POST /{version}/me/messages`. Endpoints for `fail()`: "message" (sends) and "action" (sender actions)."""

    sent: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{version}/me/messages", self._messages)
        return app

    async def _messages(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        if not call.query.get("access_token"):
            call.status = 400
            return web.json_response({"error": {"code": 100, "message": "no token"}}, status=400)
        kind = "action" if "sender_action" in (call.body or {}) else "message"
        scripted = await self._scripted(kind, call)
        if scripted is not None:
            return scripted
        self.sent += 1
        call.answered = {"recipient_id": (call.body or {}).get("recipient", {}).get("id"),
                         "message_id": f"m_out_{self.sent}"}
        return web.json_response(call.answered)

    def messages(self, psid: str | None = None, delivered_only: bool = True) -> list[Call]:
        return [c for c in self.calls if "message" in (c.body or {})
                and (psid is None or c.body["recipient"].get("id") == psid)
                and (not delivered_only or c.status == 200)]

    def texts(self, psid: str | None = None) -> list[str]:
        return [c.body["message"].get("text") for c in self.messages(psid)]

    def actions(self, psid: str | None = None) -> list[str]:
        return [c.body["sender_action"] for c in self.calls if "sender_action" in (c.body or {})
                and (psid is None or c.body["recipient"].get("id") == psid)]
