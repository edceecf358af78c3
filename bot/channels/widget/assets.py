"""The bubble's own files: `GET /widget.js` and `GET /widget.css`, which any shop's pages load from this server.

A short cache lets a shop's pages pick up a new bubble within minutes; ETag/Last-Modified make re-checks cheap.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

FILES = Path(__file__).resolve().parents[2] / "static" / "widget"

routes = web.RouteTableDef()


@routes.get("/widget.js")
async def widget_js(request: web.Request) -> web.FileResponse:
    return _asset(FILES / "widget.js")


@routes.get("/widget.css")
async def widget_css(request: web.Request) -> web.FileResponse:
    return _asset(FILES / "widget.css")


def _asset(path: Path) -> web.FileResponse:
    return web.FileResponse(path, headers={"Cache-Control": "public, max-age=300",
                                           "X-Content-Type-Options": "nosniff",
                                           "Access-Control-Allow-Origin": "*"})
