"""`GET /api/widget/suggest?q=…&lang=zh|zh-Hant|en`: questions the bubble offers while the shopper types (served here,
with the FAQ catalog the help centre uses; allowed to the bubble's sites like its own API).

From the FAQ: stored phrasings that contain what was typed (most asked first), then the FAQ index's best
matches -- the same index the bot answers from. Each suggestion is `{id, title, payload}`: the entry's display
title in the shopper's language, which the shopper sees, and the payload the bubble sends for it as a quick reply,
`/faq{"faq_id": …, "language": …}`: the bot answers exactly that entry, in the language of the suggestion (also
as a conversation's first message). An empty `q` gives the most asked questions (what the panel shows before
the shopper types). Chinese suggestions are in the script of what was typed, else in the bubble's (`zh-Hant`:
traditional characters), and their payloads say so (`"script": "traditional"`), so the answer is too.
"""

from __future__ import annotations

import json

from aiohttp import web

from bot.app_keys import AGENT, RATE_LIMITS
from bot.channels.widget.history import settings_of
from bot.channels.widget.origins import with_cors
from bot.dialogue.clarify import FAQ_ID
from bot.http import HTTPError, json_dumps
from bot.language import LANGUAGES, SCRIPT, SIMPLIFIED, TRADITIONAL, detect_language, script_of, traditional
from bot.pages.state import PAGES, SEARCHES

routes = web.RouteTableDef()
MAX_QUERY_CHARS = 200
MAX_SUGGESTIONS = 5


@routes.get("/api/widget/suggest")
@with_cors(settings_of)
async def suggest(request: web.Request) -> web.Response:
    pages = request.app[PAGES]
    await request.app[RATE_LIMITS].check(request.remote, f"pages:searches:{request.remote}", SEARCHES,
                                         "too many requests")
    text = request.query.get("q", "")[:MAX_QUERY_CHARS]
    asked = request.query.get("lang")
    ui_language = "zh" if asked == "zh-Hant" else asked if asked in LANGUAGES else "en"
    language = detect_language(text, ui_language)
    script = (script_of(text) or (TRADITIONAL if asked == "zh-Hant" else SIMPLIFIED)) if language == "zh" else None
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
                              "suggestions": [{"id": a.id,
                                               "title": traditional(a.title) if script == TRADITIONAL else a.title,
                                               "payload": payload(a.id, language, script)} for a in articles]},
                             headers={"Cache-Control": "no-store"}, dumps=json_dumps)


def payload(entry_id: str, language: str, script: str | None = None) -> str:
    """What picking a suggestion sends: that entry, answered in the suggestion's language (and Chinese script)."""
    said = {FAQ_ID: entry_id, "language": language, **({SCRIPT: script} if script == TRADITIONAL else {})}
    return "/faq" + json.dumps(said, ensure_ascii=False)
