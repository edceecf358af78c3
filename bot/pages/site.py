"""What every page kefu serves shares: where the bubble's `<script src>` points, and strict headers.

The pages embed the bubble exactly as a shop would, with one absolute `<script src>` to this server, so what
the tests drive in Chromium is the real embedding. They get a strict Content-Security-Policy: no inline
script, connections only back to this server.
"""

from __future__ import annotations

import re

from aiohttp import web

_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")
FALLBACK_HOST = "localhost:5005"


def public_host(request: web.Request) -> str:
    """host[:port] the browser used, if it looks like one (the Host header is the client's to choose)."""
    host = request.host
    return host if _HOST.match(host or "") else FALLBACK_HOST


def base_url(request: web.Request) -> str:
    """scheme://host[:port] of this server as the browser sees it."""
    return f"{'https' if request.scheme == 'https' else 'http'}://{public_host(request)}"


def page_headers(request: web.Request) -> dict[str, str]:
    host = public_host(request)
    return {
        "Content-Security-Policy": (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
            f"connect-src 'self' ws://{host} wss://{host}; frame-ancestors 'none'; base-uri 'none'; "
            "form-action 'self'; object-src 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "Cache-Control": "no-cache",
    }


def html_response(request: web.Request, html: str) -> web.Response:
    return web.Response(text=html, content_type="text/html", charset="utf-8", headers=page_headers(request))
