"""The chat bubble as a channel: what it keeps for one app (one worker), its routes, and its way in and out.

For the app's lifetime it holds the sessions, the rooms (one bus subscription routing events to the open
sockets of each conversation), the uploads and the rate limits; at shutdown every socket is told to go away
(1001) and reconnects to another worker, or to this one once it is back. A shopper's frame becomes a
`UserMessage` (`user_message`); stored events become frames, each with its `seq` and the `prev_seq` of the
frame before it, so the panel can tell when one is missing (`render`, protocol.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, web

from bot import tasks
from bot.agent import UserMessage
from bot.app_keys import RATE_LIMITS, SETTINGS
from bot.channels.base import Channel
from bot.channels.widget import assets, history, protocol, upload_retention, upload_routes, websocket
from bot.channels.widget.keys import WIDGET
from bot.channels.widget.protocol import FrameError, Said
from bot.channels.widget.rooms import Rooms
from bot.channels.widget.sessions import CONVERSATION_PREFIX, Sessions
from bot.channels.widget.settings import WidgetSettings
from bot.channels.widget.upload_quota import UploadQuota
from bot.channels.widget.uploads import UploadStore
from bot.dialogue import events as ev
from bot.ratelimit import Rate, RateLimits


@dataclass
class Open:
    """What the bubble keeps while the app runs."""

    sessions: Sessions
    rooms: Rooms
    uploads: UploadStore
    limits: RateLimits
    sockets: set[websocket.Connection] = field(default_factory=set)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)


class WidgetChannel(Channel[WidgetSettings, Said, list[protocol.Frame]]):
    name = "widget"
    key = WIDGET
    conversation_prefix = CONVERSATION_PREFIX  # web:<random>, issued by the server only
    settings_model = WidgetSettings

    def __init__(self, settings: WidgetSettings, clock: Callable[[], float] = time.time) -> None:
        super().__init__(settings, clock)
        # the store's rate limits (bot/ratelimit.py), so workers on Redis share them
        self.conversation_messages = Rate(settings.messages_per_minute, settings.message_burst)
        self.client_messages = Rate(settings.client_messages_per_minute, settings.client_message_burst)
        self._open: Open | None = None

    @property
    def open(self) -> Open:
        assert self._open is not None, "the bubble is not running"
        return self._open

    def routes(self) -> list[web.AbstractRouteDef]:
        return [*assets.routes, *history.routes, *websocket.routes, *upload_routes.routes]

    def mount(self, app: web.Application) -> None:
        super().mount(app)
        app.on_shutdown.append(self._going_away)

    @contextlib.asynccontextmanager
    async def running(self, app: web.Application) -> AsyncIterator[None]:
        assert self.stores
        settings = self.settings
        quota = UploadQuota(self.stores.kv, settings.max_conversation_uploads, settings.max_conversation_upload_bytes)
        uploads = UploadStore(settings.upload_path(app[SETTINGS].project_dir), self.stores.kv,
                              settings.max_upload_bytes, settings.upload_types, quota)
        self._open = Open(Sessions(self.stores.kv, self.settings.session_ttl_days * 86400), Rooms(self.stores.bus),
                          uploads, app[RATE_LIMITS])
        await self.open.rooms.start()
        loop = asyncio.get_running_loop()
        retention = loop.create_task(
            upload_retention.sweep_forever(uploads, settings.upload_retention_days * 86400), name="kefu-uploads")
        heartbeat = loop.create_task(websocket.heartbeat_forever(self.open.sockets, settings.heartbeat_s),
                                     name="kefu-widget-heartbeat")
        try:
            yield
        finally:
            await tasks.stop(heartbeat, retention)
            await self._going_away(app)
            await tasks.stop(*self.open.tasks)
            await self.open.rooms.stop()

    async def _going_away(self, app: web.Application) -> None:
        """Going away (1001): the panels reconnect (to another worker, or to this one once it is back)."""
        for connection in list(self._open.sockets if self._open else ()):
            with contextlib.suppress(Exception):
                await connection.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    def spawn(self, task: asyncio.Task[Any]) -> None:
        """Keep a background task until it ends (and cancel it at shutdown)."""
        self.open.tasks.add(task)
        task.add_done_callback(self.open.tasks.discard)

    # -- in and out -----------------------------------------------------------------------------------------

    async def user_message(self, incoming: Said) -> UserMessage:
        """The frame as the bot's input: attachments must be this conversation's uploads (else FrameError)."""
        cid, frame = incoming
        metadata: dict[str, Any] = {"title": frame.title} if frame.title else {}
        text = frame.text
        if frame.attachments:
            found = [await self.open.uploads.get(a) for a in frame.attachments]
            attachments = [a for a in found if a is not None and a.conversation_id == cid]
            if len(attachments) != len(frame.attachments):
                raise FrameError("bad_attachment", "unknown attachment", client_msg_id=frame.client_msg_id)
            metadata["attachments"] = [a.public() for a in attachments]
            metadata["caption"] = frame.text.strip()
            text = frame.text.strip() or ", ".join(a.name for a in attachments)
        return UserMessage(cid, text, self.name, cid, frame.client_msg_id, metadata)

    def render(self, events: list[ev.Event], language: str = "") -> list[protocol.Frame]:
        """The frames a shopper sees for these events (the same in every language: texts are the events')."""
        return protocol.frames(events)
