"""The self-service help centre: `GET /help`, `GET /help/{id}` (pages) and `GET /api/help/search?q=` (JSON).

Search goes through the bot's own parse (language detection + FAQ index), so a shopper finds here exactly
what the bot would answer: "运费" and "shipping fee" open the same entry. Articles are shown in the page's
language (`?lang=`, else the browser's Accept-Language).
"""

from __future__ import annotations

from aiohttp import web

from bot.app_keys import AGENT
from bot.channels.widget import help_html, protocol
from bot.channels.widget.catalog import Article, category_label
from bot.channels.widget.context import WIDGET
from bot.channels.widget.history import client_ip
from bot.channels.widget.pages import page_headers, public_host
from bot.http import HTTPError
from bot.language import LANGUAGES

routes = web.RouteTableDef()
MAX_QUERY_CHARS = 200
MAX_RESULTS = 5


def page_language(request: web.Request) -> str:
    asked = request.query.get("lang")
    if asked in LANGUAGES:
        return asked
    accept = request.headers.get("Accept-Language", "").lower()
    first = accept.split(",")[0].strip()
    return "zh" if first.startswith("zh") else "en"


def _widget_src(request: web.Request) -> str:
    scheme = "https" if request.scheme == "https" else "http"
    return f"{scheme}://{public_host(request)}/widget.js"


async def _search(request: web.Request, query: str, language: str) -> list[Article]:
    ctx = request.app[WIDGET]
    if not ctx.suggest_limit.take(client_ip(request)):
        raise HTTPError(429, "too many searches; wait a moment")
    counts = await ctx.popularity.counts()
    hits = await ctx.catalog.search(request.app[AGENT], query, MAX_RESULTS)
    return [a for a in (ctx.catalog.article(i, language, counts) for i, _ in hits) if a]


def _html(request: web.Request, language: str, title: str, body: str) -> web.Response:
    return web.Response(text=help_html.page(language, title, body, _widget_src(request)),
                        content_type="text/html", charset="utf-8", headers=page_headers(request))


@routes.get("/help")
async def help_home(request: web.Request) -> web.Response:
    ctx = request.app[WIDGET]
    language = page_language(request)
    query = request.query.get("q", "").strip()[:MAX_QUERY_CHARS]
    counts = await ctx.popularity.counts()
    category = request.query.get("category", "")
    topics = {key: (label, articles) for key, label, articles in ctx.catalog.categories(language, counts)}
    if category in topics and not query:
        label, articles = topics[category]
        return _html(request, language, label, help_html.category_page(language, label, articles))
    results = await _search(request, query, language) if query else None
    body = help_html.home(language, query, results, ctx.catalog.most_asked(language, counts),
                          ctx.catalog.categories(language, counts))
    return _html(request, language, help_html.STRINGS[language]["title"], body)


@routes.get("/help/{entry_id}")
async def help_article(request: web.Request) -> web.Response:
    ctx = request.app[WIDGET]
    language = page_language(request)
    counts = await ctx.popularity.counts()
    article = ctx.catalog.article(request.match_info["entry_id"], language, counts)
    if article is None:
        raise web.HTTPFound(f"/help?lang={language}")
    body = help_html.article_page(language, article, category_label(article.category, language),
                                  ctx.catalog.related(article, language, counts))
    return _html(request, language, article.question, body)


@routes.get("/api/help/search")
async def help_search(request: web.Request) -> web.Response:
    query = request.query.get("q", "").strip()[:MAX_QUERY_CHARS]
    if not query:
        raise HTTPError(400, "q is required")
    language = page_language(request)
    results = await _search(request, query, language)
    return web.json_response({"query": query, "language": language, "results": [
        {"id": a.id, "category": a.category, "question": a.question, "answer": a.answer, "url": f"/help/{a.id}"}
        for a in results]}, dumps=protocol.dumps)
