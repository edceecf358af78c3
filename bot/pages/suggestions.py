"""`GET /api/widget/suggest?q=…&lang=zh|en`: questions the bubble offers while the shopper types (served here,
with the FAQ catalog the help centre uses; allowed to the bubble's sites like its own API).

From the FAQ: stored phrasings that contain what was typed (most asked first), then the FAQ index's best
matches -- the same index the bot answers from, so picking a suggestion gets that entry's answer. An empty `q`
gives the most asked questions (what the panel shows before the shopper types).
"""

from __future__ import annotations

from aiohttp import web

from bot.app_keys import AGENT
from bot.channels.widget.history import client_ip, settings_of
from bot.channels.widget.origins import with_cors
from bot.http import HTTPError, json_dumps
from bot.language import LANGUAGES, detect_language
from bot.pages.state import PAGES

routes = web.RouteTableDef()
MAX_QUERY_CHARS = 200
MAX_SUGGESTIONS = 5


@routes.get("/api/widget/suggest")
@with_cors(settings_of)
async def suggest(request: web.Request) -> web.Response:
    pages = request.app[PAGES]
    if not pages.searches.take(client_ip(request)):
        raise HTTPError(429, "too many requests")
    text = request.query.get("q", "")[:MAX_QUERY_CHARS]
    ui_language = request.query.get("lang") if request.query.get("lang") in LANGUAGES else "en"
    language = detect_language(text, ui_language)
    counts = await pages.popularity.counts()
    try:
        limit = min(MAX_SUGGESTIONS, max(1, int(request.query.get("limit", MAX_SUGGESTIONS))))
    except ValueError:
        raise HTTPError(400, "limit must be an integer") from None
    if text.strip():
        articles = await pages.catalog.suggest(request.app[AGENT], text, language, counts, limit)
    else:
        articles = pages.catalog.most_asked(language, counts, limit)
    return web.json_response({"language": language,
                              "suggestions": [{"id": a.id, "question": a.question} for a in articles]},
                             headers={"Cache-Control": "no-store"}, dumps=json_dumps)
