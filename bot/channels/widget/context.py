"""Everything the bubble keeps for one app (one worker), opened and closed with it: no module-level state."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from bot.channels.widget.catalog import FaqCatalog
from bot.channels.widget.popularity import FaqPopularity
from bot.channels.widget.ratelimit import KeyedLimiter
from bot.channels.widget.rooms import Rooms
from bot.channels.widget.sessions import Sessions
from bot.channels.widget.uploads import UploadStore
from bot.endpoints import WidgetSettings
from bot.stores import Stores

SESSIONS_PER_MINUTE_PER_IP = 30
SUGGESTIONS_PER_MINUTE_PER_IP = 120
UPLOADS_PER_MINUTE = 6
UPLOAD_BURST = 5


@dataclass
class WidgetContext:
    settings: WidgetSettings
    sessions: Sessions
    rooms: Rooms
    uploads: UploadStore
    popularity: FaqPopularity
    catalog: FaqCatalog
    messages: KeyedLimiter  # per conversation: what reaches the bot
    uploads_limit: KeyedLimiter  # per conversation
    per_ip: KeyedLimiter  # new sessions
    suggest_limit: KeyedLimiter  # per IP
    sockets: set[web.WebSocketResponse] = field(default_factory=set)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @classmethod
    def open(cls, settings: WidgetSettings, stores: Stores, project_dir: Path, catalog: FaqCatalog) -> WidgetContext:
        popularity = FaqPopularity(stores.kv, stores.trackers)
        return cls(
            settings=settings,
            sessions=Sessions(stores.kv, settings.session_ttl_days * 86400),
            rooms=Rooms(stores.bus, observers=[popularity.observe]),
            uploads=UploadStore(settings.upload_path(project_dir), stores.kv, settings.max_upload_bytes,
                                settings.upload_types),
            popularity=popularity,
            catalog=catalog,
            messages=KeyedLimiter(settings.messages_per_minute / 60, settings.message_burst),
            uploads_limit=KeyedLimiter(UPLOADS_PER_MINUTE / 60, UPLOAD_BURST),
            per_ip=KeyedLimiter(SESSIONS_PER_MINUTE_PER_IP / 60, 10),
            suggest_limit=KeyedLimiter(SUGGESTIONS_PER_MINUTE_PER_IP / 60, 20),
        )

    def spawn(self, task: asyncio.Task[None]) -> None:
        """Keep a background task until it ends (and cancel it at shutdown)."""
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


WIDGET: web.AppKey[WidgetContext] = web.AppKey("widget")
