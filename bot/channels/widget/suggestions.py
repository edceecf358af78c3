"""`GET /api/widget/suggest?q=…&lang=zh|en`: questions to offer while the shopper types.

From the FAQ: stored phrasings that contain what was typed (most asked first), then the FAQ index's best
matches -- the same index the bot answers from, so picking a suggestion gets that entry's answer. An empty `q`
gives the most asked questions (what the panel shows before the shopper types).
"""

from __future__ import annotations

from aiohttp import web

from bot.app_keys import AGENT
from bot.channels.widget import protocol
from bot.channels.widget.context import WIDGET
from bot.channels.widget.history import client_ip, settings_of
from bot.channels.widget.origins import with_cors
from bot.http import HTTPError
from bot.language import LANGUAGES, detect_language

routes = web.RouteTableDef()
MAX_QUERY_CHARS = 200
MAX_SUGGESTIONS = 5


@routes.get("/api/widget/suggest")
@with_cors(settings_of)
async def suggest(request: web.Request) -> web.Response:
    ctx = request.app[WIDGET]
    if not ctx.suggest_limit.take(client_ip(request)):
        raise HTTPError(429, "too many requests")
    text = request.query.get("q", "")[:MAX_QUERY_CHARS]
    ui_language = request.query.get("lang") if request.query.get("lang") in LANGUAGES else "en"
    language = detect_language(text, ui_language)
    counts = await ctx.popularity.counts()
    try:
        limit = min(MAX_SUGGESTIONS, max(1, int(request.query.get("limit", MAX_SUGGESTIONS))))
    except ValueError:
        raise HTTPError(400, "limit must be an integer") from None
    if text.strip():
        articles = await ctx.catalog.suggest(request.app[AGENT], text, language, counts, limit)
    else:
        articles = ctx.catalog.most_asked(language, counts, limit)
    return web.json_response({"language": language,
                              "suggestions": [{"id": a.id, "question": a.question} for a in articles]},
                             headers={"Cache-Control": "no-store"}, dumps=protocol.dumps)
