"""The pages kefu serves around the chat bubble (they embed it as a shop's pages would; they are not part of it).

| route | module |
|---|---|
| `GET /`, `/demo/*` | shop (the demo shop; products in static/demo/products.json) |
| `GET /help`, `GET /help/{id}`, `GET /api/help/search` | helpcentre (HTML: help_html, words: texts.yml) |
| `GET /api/widget/suggest` | suggestions (questions the bubble offers while the shopper types) |

They share the FAQ as shoppers browse it (`catalog`, through the agent's public FAQ interface), how often each
entry is asked (`popularity`) and the pages' headers (`site`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from bot.app_keys import AGENT, STORES
from bot.pages import helpcentre, shop, suggestions
from bot.pages.catalog import FaqCatalog
from bot.pages.popularity import FaqPopularity
from bot.pages.state import PAGES, Pages

__all__ = ["PAGES", "Pages", "mount"]


def mount(app: web.Application) -> None:
    """The pages' routes, and their lifecycle after the core's (they need the agent and the stores)."""
    for module in (shop, helpcentre, suggestions):
        app.add_routes(module.routes)
    shop.add_static(app)
    app.cleanup_ctx.append(_lifecycle)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    popularity = FaqPopularity(app[STORES])
    state = app[PAGES] = Pages(FaqCatalog(app[AGENT].faq_entries()), popularity)

    def knowledge_changed() -> None:  # a published knowledge version: the help centre shows it at once
        state.catalog = FaqCatalog(app[AGENT].faq_entries())

    app[AGENT].faq_listeners.append(knowledge_changed)
    app[AGENT].turn_listeners.append(popularity.saw)
    async with popularity.counting():
        yield
