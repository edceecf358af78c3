"""What every console route shares: the logged-in agent, JSON answers, security headers, and the one mapping from
the human side's refusals (handoff/errors.py) to HTTP statuses.

Everything needs a logged-in agent — a session cookie (HttpOnly, SameSite=Strict) set by the login page or
`POST /api/agent/login`, or the same token as `Authorization: Bearer …` — except the login page and the login
call. Shopper sessions (chat bubble, channels) are different credentials and never open these routes.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from bot.http import HTTPError, read_json
from handoff.agents import AgentAccount
from handoff.app_keys import HANDOFF
from handoff.errors import Busy, Conflict, Forbidden, HandoffError, Invalid, LockedOut, NotFound
from handoff.service import HandoffService

COOKIE = "kefu_console"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
STATUS_OF: dict[type[HandoffError], int] = {Invalid: 400, Forbidden: 403, NotFound: 404, Conflict: 409,
                                            LockedOut: 429, Busy: 503}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def handoff(request: web.Request) -> HandoffService:
    return request.app[HANDOFF]


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda v: json.dumps(v, ensure_ascii=False))


def secure_headers(response: web.StreamResponse, csp: str = CSP) -> web.StreamResponse:
    response.headers["Content-Security-Policy"] = csp
    response.headers["X-Content-Type-Options"] = "nosniff"
    # same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null` on the login form's POST
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


@contextlib.contextmanager
def refusals_as_http() -> Iterator[None]:
    """A refusal of the human side becomes its JSON error with the status that says why."""
    try:
        yield
    except HandoffError as exc:
        status = next((s for kind, s in STATUS_OF.items() if isinstance(exc, kind)), 400)
        raise HTTPError(status, str(exc)) from None


async def string_fields(request: web.Request, names: tuple[str, ...], usage: str) -> list[str | None]:
    """The named fields of the JSON object body, each a string or absent; 400 saying `usage` otherwise."""
    body = await read_json(request) if request.can_read_body else {}
    if not isinstance(body, dict) or not all(isinstance(body.get(n), str | None) for n in names):
        raise HTTPError(400, usage)
    return [body.get(n) for n in names]


def session_token(request: web.Request) -> tuple[str | None, bool]:
    """The session token, and whether it came from the cookie (a browser: check the origin of changes)."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header.removeprefix("Bearer ").strip(), False
    cookie = request.cookies.get(COOKIE)
    return (cookie, True) if cookie else (None, False)


def same_origin(request: web.Request) -> bool:
    """Browsers name the page's origin on every cross-site request (and same-site POSTs): it must be ours."""
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


async def current_agent(request: web.Request) -> AgentAccount:
    """The logged-in agent, or 401. A cookie-authenticated change must come from the console's own origin."""
    token, from_cookie = session_token(request)
    agents = handoff(request).agents
    account = await agents.session_user(token) if token else None
    if account is None:
        raise HTTPError(401, "log in to the agent console first")
    if from_cookie and (request.method != "GET" or request.path.endswith("/ws")) and not same_origin(request):
        raise HTTPError(403, "request from another site refused")
    await agents.seen(account.username)
    return account


def agent_api(handler: Callable[[web.Request, AgentAccount], Awaitable[web.StreamResponse]]) -> Handler:
    """An /api/agent handler: authenticated, and a refused action becomes its JSON error."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        account = await current_agent(request)
        with refusals_as_http():
            return await handler(request, account)

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped
