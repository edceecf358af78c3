"""Where the app keeps the bubble: its route handlers find the `WidgetChannel` (settings, sessions, rooms,
uploads, limits, open sockets) there."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from bot.channels.widget.channel import WidgetChannel

WIDGET: web.AppKey[WidgetChannel] = web.AppKey("widget")
