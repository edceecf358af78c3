"""What every page kefu serves shares: where the bubble's `<script src>` points, and strict headers.

The pages embed the bubble exactly as a shop would, with one absolute `<script src>` to this server, so what
the tests drive in Chromium is the real embedding. They get a strict Content-Security-Policy: no inline
script, connections only back to this server. That URL is the configured public URL (`KEFU_PUBLIC_URL`), else
the address the connection reached (the one `kefu run` listens on) -- never the Host header, which is the
client's to choose.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from bot.app_keys import SETTINGS

FALLBACK_HOST = "127.0.0.1:5005"


def local_host(request: web.Request) -> str:
    """host:port of this server's end of the connection (the bind address, or the interface reached)."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if not isinstance(sockname, tuple) or len(sockname) < 2:
        return FALLBACK_HOST  # a Unix socket: only a configured public URL can say where browsers are
    host, port = str(sockname[0]), int(sockname[1])
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def base_url(request: web.Request) -> str:
    """scheme://host[:port] of this server as browsers reach it."""
    configured = request.app[SETTINGS].public_url
    if configured:
        return configured
    return f"{'https' if request.secure else 'http'}://{local_host(request)}"


def page_headers(request: web.Request) -> dict[str, str]:
    host = urlsplit(base_url(request)).netloc
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
