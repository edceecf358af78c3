"""The self-service help centre: `GET /help`, `GET /help/{id}` (pages) and `GET /api/help/search?q=` (JSON).

Search goes through the bot's own FAQ search (`Agent.search_faq`, in the query's language), so a shopper finds
here exactly what the bot would answer: "运费" and "shipping fee" open the same entry. Articles are shown in the
page's language (`?lang=`, else the browser's Accept-Language).
"""

from __future__ import annotations

from aiohttp import web

from bot.app_keys import AGENT, RATE_LIMITS
from bot.http import HTTPError, json_dumps
from bot.language import LANGUAGES
from bot.pages import help_html
from bot.pages.catalog import Article
from bot.pages.site import base_url, html_response
from bot.pages.state import PAGES, SEARCHES
from bot.pages.texts import category_label, text

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


async def _search(request: web.Request, query: str, language: str) -> list[Article]:
    pages = request.app[PAGES]
    await request.app[RATE_LIMITS].check(request.remote, f"pages:searches:{request.remote}", SEARCHES,
                                         "too many searches; wait a moment")
    counts = await pages.popularity.counts()
    found = await pages.catalog.search(request.app[AGENT], query, MAX_RESULTS)
    return [a for a in (pages.catalog.article(i, language, counts) for i in found) if a]


def _html(request: web.Request, language: str, title: str, body: str) -> web.Response:
    return html_response(request, help_html.page(language, title, body, f"{base_url(request)}/widget.js"))


@routes.get("/help")
async def help_home(request: web.Request) -> web.Response:
    pages = request.app[PAGES]
    language = page_language(request)
    query = request.query.get("q", "").strip()[:MAX_QUERY_CHARS]
    counts = await pages.popularity.counts()
    category = request.query.get("category", "")
    topics = {key: (label, articles) for key, label, articles in pages.catalog.categories(language, counts)}
    if category in topics and not query:
        label, articles = topics[category]
        return _html(request, language, label, help_html.category_page(language, label, articles))
    results = await _search(request, query, language) if query else None
    body = help_html.home(language, query, results, pages.catalog.most_asked(language, counts),
                          pages.catalog.categories(language, counts))
    return _html(request, language, text("title", language), body)


@routes.get("/help/{entry_id}")
async def help_article(request: web.Request) -> web.Response:
    pages = request.app[PAGES]
    language = page_language(request)
    counts = await pages.popularity.counts()
    article = pages.catalog.article(request.match_info["entry_id"], language, counts)
    if article is None:
        raise web.HTTPFound(f"/help?lang={language}")
    body = help_html.article_page(language, article, category_label(article.category, language),
                                  pages.catalog.related(article, language, counts))
    return _html(request, language, article.title, body)


@routes.get("/api/help/search")
async def help_search(request: web.Request) -> web.Response:
    query = request.query.get("q", "").strip()[:MAX_QUERY_CHARS]
    if not query:
        raise HTTPError(400, "q is required")
    language = page_language(request)
    results = await _search(request, query, language)
    return web.json_response({"query": query, "language": language, "results": [
        {"id": a.id, "category": a.category, "title": a.title, "answer": a.answer, "url": f"/help/{a.id}"}
        for a in results]}, dumps=json_dumps)
