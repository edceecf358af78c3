"""Live knowledge: the FAQ edited in the console and published without retraining (docs/knowledge.md).

    versions.py  versions in the store (SQLite or Redis): publish, history, roll-back
    live.py      this worker's FAQ index on the newest version (poll, build off the loop, swap)
    builder.py   a large version's new texts embedded in a low-priority process, off the message path
    entries.py   an entry as the API and YAML give it, checked as `kefu data validate` checks it
    faq_yaml.py  `kefu faq export` / `kefu faq import`: data/faq.yml's format
    usage.py     how often each entry answered, and how often a person was asked for after it
    gaps.py      what the bot could not answer, grouped by meaning, with a suggested entry and a draft
    preview.py   what a change would do to the test questions and the last real ones
    routes.py    /api/agent/knowledge/* (the console's Knowledge page)
    keys.py      what the app keeps (the live knowledge, the usage figures)
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from bot.app_keys import AGENT, STORES
from bot.knowledge import routes
from bot.knowledge.keys import KNOWLEDGE, USAGE
from bot.knowledge.live import LiveKnowledge
from bot.knowledge.usage import Usage
from bot.knowledge.versions import KnowledgeVersions

__all__ = ["KNOWLEDGE", "mount"]


def mount(app: web.Application) -> None:
    """The knowledge routes, and the worker's live index after the core's lifecycle (it needs the agent)."""
    app.add_routes(routes.routes)
    app.cleanup_ctx.append(_lifecycle)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    live = LiveKnowledge(app[AGENT], KnowledgeVersions(app[STORES].kv))
    app[KNOWLEDGE] = live
    app[USAGE] = Usage(app[STORES].trackers)
    await live.start()
    yield
    await live.stop()
