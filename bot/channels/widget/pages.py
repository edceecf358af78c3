"""The pages `kefu run` serves around the bubble: `/widget.js` + `/widget.css`, and the demo shop at `/`.

The demo page embeds the bubble exactly as a shop would, with one absolute `<script src>` to this server, so
what the tests drive in Chromium is the real embedding. The pages get a strict Content-Security-Policy: no
inline script, connections only back to this server.
"""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).resolve().parents[2] / "static"
WIDGET_DIR = STATIC / "widget"
DEMO_DIR = STATIC / "demo"
HOST_PLACEHOLDER = "__KEFU_HOST__"
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")
FALLBACK_HOST = "localhost:5005"

routes = web.RouteTableDef()


def public_host(request: web.Request) -> str:
    """host[:port] the browser used, if it looks like one (the Host header is the client's to choose)."""
    host = request.host
    return host if _HOST.match(host or "") else FALLBACK_HOST


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


def render_page(request: web.Request, template: str) -> web.Response:
    """A page template with this server's scheme://host filled in for the bubble's `<script src>`."""
    scheme = "https" if request.scheme == "https" else "http"
    html = template.replace(f"http://{HOST_PLACEHOLDER}", f"{scheme}://{public_host(request)}")
    return web.Response(text=html, content_type="text/html", charset="utf-8", headers=page_headers(request))


@routes.get("/")
async def demo_shop(request: web.Request) -> web.Response:
    return render_page(request, (DEMO_DIR / "index.html").read_text(encoding="utf-8"))


@routes.get("/widget.js")
async def widget_js(request: web.Request) -> web.FileResponse:
    return _asset(WIDGET_DIR / "widget.js")


@routes.get("/widget.css")
async def widget_css(request: web.Request) -> web.FileResponse:
    return _asset(WIDGET_DIR / "widget.css")


def _asset(path: Path) -> web.FileResponse:
    # short cache: a shop's pages pick up a new bubble within minutes; ETag/Last-Modified make re-checks cheap
    return web.FileResponse(path, headers={"Cache-Control": "public, max-age=300",
                                           "X-Content-Type-Options": "nosniff",
                                           "Access-Control-Allow-Origin": "*"})


def add_static(app: web.Application) -> None:
    """The demo shop's own files (CSS, JS, pictures) under /demo/."""
    app.router.add_static("/demo/", DEMO_DIR, show_index=False, append_version=False)
