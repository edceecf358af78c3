"""The website chat bubble (docs/widget.md, protocol in docs/channels.md §3): `setup(app)` adds all of it.

| route | module |
|---|---|
| `GET /widget.js`, `GET /widget.css`, `GET /` (demo shop), `/demo/*` | pages |
| `POST /api/widget/session`, `GET /api/widget/history` | history (tokens: sessions) |
| `GET /api/widget/ws` | websocket (frames: protocol; fan-out: rooms; limits: ratelimit; origins) |
| `POST /api/widget/upload`, `GET /api/widget/files/{id}` | upload_routes (storage: uploads) |
| `GET /api/widget/suggest` | suggestions (FAQ view: catalog; ranking: popularity) |
| `GET /help`, `GET /help/{id}`, `GET /api/help/search` | helpcentre (HTML: help_html) |
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import WSCloseCode, web

from bot.app_keys import AGENT, SETTINGS, STORES
from bot.channels.widget import helpcentre, history, pages, suggestions, upload_routes, websocket
from bot.channels.widget.catalog import FaqCatalog
from bot.channels.widget.context import WIDGET, WidgetContext

__all__ = ["WIDGET", "WidgetContext", "setup"]


def setup(app: web.Application) -> None:
    """Register the bubble's routes and its life cycle. Call after the app's own cleanup_ctx (stores, agent)
    has been added, so the bubble starts after them and stops before them."""
    for module in (pages, history, websocket, upload_routes, suggestions, helpcentre):
        app.add_routes(module.routes)
    pages.add_static(app)
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_close_sockets)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    ctx = WidgetContext.open(settings.endpoints.widget, app[STORES], settings.project_dir,
                             FaqCatalog(app[AGENT].model.faq.entries))
    app[WIDGET] = ctx
    await ctx.rooms.start()
    yield
    await _close_sockets(app)
    for task in list(ctx.tasks):
        task.cancel()
    await asyncio.gather(*ctx.tasks, return_exceptions=True)
    await ctx.rooms.stop()
    await ctx.popularity.close()


async def _close_sockets(app: web.Application) -> None:
    """Going away (1001): the panels reconnect (to another worker, or to this one once it is back)."""
    ctx = app.get(WIDGET)
    if ctx is None:
        return
    for ws in list(ctx.sockets):
        with contextlib.suppress(Exception):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
