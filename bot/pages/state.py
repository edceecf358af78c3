"""What the pages keep for one app (one worker): the FAQ as shoppers browse it, how often each entry is asked,
and the per-address limit on searches (help centre and suggestions share it; kept in the store, bot/ratelimit.py)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from bot.pages.catalog import FaqCatalog
from bot.pages.popularity import FaqPopularity
from bot.ratelimit import Rate

SEARCHES = Rate(per_minute=120, burst=20)  # per client address


@dataclass
class Pages:
    catalog: FaqCatalog
    popularity: FaqPopularity


PAGES: web.AppKey[Pages] = web.AppKey("pages")
