"""The demo shop: `GET /` (a tea shop's page with the chat bubble, as a shop would embed it) and its files under
`/demo/`. The products come from `static/demo/products.json` and are written into the page, escaped, so the
page works without JavaScript; the page shows the language the shopper picked (shop.js)."""

from __future__ import annotations

import json
from functools import cache
from html import escape
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.pages.site import base_url, html_response

FILES = Path(__file__).resolve().parents[1] / "static" / "demo"
HOST_PLACEHOLDER = "http://__KEFU_HOST__"  # in index.html: where the bubble's <script src> points

routes = web.RouteTableDef()


@routes.get("/")
async def demo_shop(request: web.Request) -> web.Response:
    return html_response(request, page().replace(HOST_PLACEHOLDER, base_url(request)))


@cache
def page() -> str:
    """index.html with the product sections filled in (read once)."""
    html = (FILES / "index.html").read_text(encoding="utf-8")
    products = json.loads((FILES / "products.json").read_text(encoding="utf-8"))
    return html.replace("<!-- kefu:products -->", "\n\n".join(map(section, products["sections"])))


def section(shelf: dict[str, Any]) -> str:
    heading = escape(f"{shelf['id']}-h")
    cards = "\n      ".join(card(product) for product in shelf["products"])
    return f"""<section id="{escape(shelf["id"])}" class="products" aria-labelledby="{heading}">
    <h2 id="{heading}">{both(shelf["title"])}</h2>
    <ul class="grid">
      {cards}
    </ul>
  </section>"""


def card(product: dict[str, Any]) -> str:
    return f"""<li class="card">
        <div class="thumb thumb-{escape(product["thumb"])}" aria-hidden="true">{escape(product["mark"])}</div>
        <h3>{both(product["name"])}</h3>
        <p class="desc">{both(product["description"])}</p>
        <p class="price">{escape(product["price"])}</p>
        <button type="button" class="add" data-add-to-cart>{both({"en": "Add to cart", "zh": "加入购物车"})}</button>
      </li>"""


def both(text: dict[str, str]) -> str:
    """Both languages; the page's stylesheet shows the one the shopper chose."""
    return f'<span lang="en">{escape(text["en"])}</span><span lang="zh-CN">{escape(text["zh"])}</span>'


def add_static(app: web.Application) -> None:
    """The demo shop's own files (CSS, JS, pictures) under /demo/."""
    app.router.add_static("/demo/", FILES, show_index=False, append_version=False)
