"""What the pages keep for one app (one worker): the FAQ as shoppers browse it, how often each entry is asked,
and a per-address limit on searches (help centre and suggestions share it)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from bot.channels.widget.ratelimit import KeyedLimiter
from bot.pages.catalog import FaqCatalog
from bot.pages.popularity import FaqPopularity

SEARCHES_PER_MINUTE_PER_IP = 120


@dataclass
class Pages:
    catalog: FaqCatalog
    popularity: FaqPopularity
    searches: KeyedLimiter


PAGES: web.AppKey[Pages] = web.AppKey("pages")
