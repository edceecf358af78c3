"""HTTP helpers shared by every route: JSON errors, bounded strict JSON bodies, header checks, token checks."""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot import strict_json
from bot.stores.errors import store_unavailable

log = logging.getLogger(__name__)

MAX_JSON_BYTES = 64 * 1024
RETRY_AFTER_S = 2  # a Redis restart or failover, a busy SQLite: over in seconds


def json_dumps(value: Any) -> str:
    """JSON for answers and frames: compact, with Chinese as it is (readable and smaller than \\uXXXX)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def json_error(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status, headers=headers)


class HTTPError(Exception):
    """An answer with this status and `{"error": message, **extra}`, and any headers (Retry-After…)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.extra = extra


@web.middleware
async def error_middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
    """Every error is JSON with a status that says what happened; nothing internal leaks. A store that does not
    answer (Redis restarting or paused) is 503 with Retry-After: the client's retry will work, nothing is broken."""
    try:
        check_headers(request)
        return await handler(request)
    except HTTPError as exc:
        return json_error(exc.status, exc.message, exc.headers, **exc.extra)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        return json_error(exc.status, exc.reason)
    except Exception as exc:
        if store_unavailable(exc):
            log.warning("store unavailable on %s %s: %s", request.method, request.path, type(exc).__name__)
            return json_error(503, "storage is unavailable; try again shortly", {"Retry-After": str(RETRY_AFTER_S)})
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(500, "internal error")


def check_headers(request: web.Request) -> None:
    """Refuse a request whose headers are not UTF-8 at the door (400). aiohttp keeps undecodable bytes as lone
    surrogates, which fail later wherever a header is encoded again: a token or signature comparison, a cookie, an
    id we store."""
    for name, value in request.raw_headers:
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            raise HTTPError(400, f"header {name.decode('latin-1')[:40]} is not valid UTF-8") from None


async def read_json(request: web.Request, max_bytes: int = MAX_JSON_BYTES,
                    max_depth: int = strict_json.MAX_DEPTH) -> Any:
    """The request's JSON body, size-capped and parsed strictly (bot.strict_json): 413 or 400 with a reason."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise HTTPError(413, f"body too large (limit {max_bytes} bytes)")
    body = await request.content.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise HTTPError(413, f"body too large (limit {max_bytes} bytes)")
    try:
        return strict_json.loads(body, max_depth)
    except strict_json.JSONInputError as exc:
        raise HTTPError(400, f"body is not valid JSON: {exc}") from None


def is_loopback(request: web.Request) -> bool:
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


def check_token(request: web.Request, token: str | None, loopback_without_token: bool = False,
                also: str | None = None) -> None:
    """`?token=T` or `Authorization: Bearer T` (Rasa's --auth-token; `also`: another token this endpoint takes),
    compared in constant time. With no token configured, `loopback_without_token` keeps the endpoint to this
    machine."""
    accepted = [t.encode() for t in (token, also) if t]
    if not accepted:
        if loopback_without_token and not is_loopback(request):
            raise HTTPError(403, "this endpoint needs `kefu run --auth-token` when used from another machine")
        return
    given = request.query.get("token") or request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    # every candidate is compared (no early exit), so the time taken says nothing about which one matched
    matches = [hmac.compare_digest(given.encode(errors="replace"), t) for t in accepted]
    if not given or not any(matches):
        raise HTTPError(401, "missing or wrong token")
