"""The website chat bubble, and only the bubble (docs/widget.md, protocol in docs/channels.md §3).

| route | module |
|---|---|
| `GET /widget.js`, `GET /widget.css` | assets (the panel itself: bot/static/widget/) |
| `POST /api/widget/session`, `GET /api/widget/history` | history (tokens: sessions) |
| `GET /api/widget/ws` | websocket (frames: protocol; fan-out: rooms; limits: bot/ratelimit.py; origins) |
| `POST /api/widget/upload`, `GET /api/widget/files/{id}` | upload_routes (storage: uploads) |

`WidgetChannel` (channel.py) is the channel; its settings are `channels.widget` (settings.py). The demo shop,
the help centre and the typing suggestions are pages around the bubble (bot/pages).
"""

from __future__ import annotations

from bot.channels.widget.channel import WidgetChannel
from bot.channels.widget.keys import WIDGET
from bot.channels.widget.settings import WidgetSettings

__all__ = ["WIDGET", "WidgetChannel", "WidgetSettings"]
