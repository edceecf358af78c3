"""Which pages may talk to the bubble: the `Origin` allowlist, and CORS for the HTTP half of the API.

WebSockets are not covered by CORS, so without this check any site could open a socket with a shopper's
browser and read their conversation (cross-site WebSocket hijacking, docs/channels.md §3.3). The same check
guards `/api/widget/*`, and allowed origins get the CORS headers a cross-site shop page needs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.channels.widget.settings import WidgetSettings
from bot.http import HTTPError, json_error

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PREFLIGHT_MAX_AGE_S = 600


def request_origin(request: web.Request) -> str | None:
    """The page's origin as the browser sent it (lower-cased, no trailing slash), None if absent."""
    origin = request.headers.get("Origin")
    return origin.strip().rstrip("/").lower() if origin else None


def own_origin(request: web.Request) -> str:
    """This server as the browser sees it (scheme://host:port from the Host header)."""
    return f"{request.scheme}://{request.host}".lower()


def origin_allowed(request: web.Request, settings: WidgetSettings) -> bool:
    origin = request_origin(request)
    if origin is None or origin == "null":
        return False
    return origin in settings.allowed_origins or (settings.allow_same_origin and origin == own_origin(request))


def check_browser_origin(request: web.Request, settings: WidgetSettings) -> None:
    """For plain HTTP calls: a request without Origin is not from a page (curl, a server) and passes; the
    session token is the authentication. A page on a site that is not allowed gets 403."""
    if request_origin(request) is not None and not origin_allowed(request, settings):
        raise HTTPError(403, "this site is not allowed to use the chat "
                             "(channels.widget.allowed_origins in endpoints.yml)")


def cors_headers(request: web.Request, settings: WidgetSettings) -> dict[str, str]:
    origin = request_origin(request)
    if origin is None or not origin_allowed(request, settings):
        return {"Vary": "Origin"}
    return {"Access-Control-Allow-Origin": request.headers["Origin"], "Vary": "Origin"}


def with_cors(settings_of: Callable[[web.Request], WidgetSettings]) -> Callable[[Handler], Handler]:
    """Wrap a handler: refuse other sites' pages, add CORS headers to every answer (errors included, so the
    panel can read them)."""

    def wrap(handler: Handler) -> Handler:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            settings = settings_of(request)
            headers = cors_headers(request, settings)
            try:
                check_browser_origin(request, settings)
                response = await handler(request)
            except HTTPError as exc:
                response = json_error(exc.status, exc.message, exc.headers, **exc.extra)
            response.headers.update(headers)
            return response

        wrapped.__doc__ = handler.__doc__
        return wrapped

    return wrap


def preflight(settings_of: Callable[[web.Request], WidgetSettings]) -> Handler:
    """`OPTIONS` for the cross-site calls that send JSON or `Authorization` (upload, history, session)."""

    async def handler(request: web.Request) -> web.Response:
        settings = settings_of(request)
        if not origin_allowed(request, settings):
            return json_error(403, "this site is not allowed to use the chat")
        return web.Response(status=204, headers={
            **cors_headers(request, settings),
            "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
            "Access-Control-Allow-Headers": "Authorization, Content-Type",
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
        })

    return handler
