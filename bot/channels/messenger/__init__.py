"""Facebook Messenger channel: `GET/POST /webhooks/messenger` (docs/channels.md §2, checklist F1–F18).

Configured only from the environment (`MessengerSettings`, config.py): MESSENGER_VERIFY_TOKEN,
MESSENGER_APP_SECRET, MESSENGER_PAGE_ACCESS_TOKEN, MESSENGER_GRAPH_API_BASE, MESSENGER_GRAPH_API_VERSION,
MESSENGER_HUMAN_AGENT (only once App Review granted it). Without them the channel is not mounted (404).

Modules: config (settings), signature (X-Hub-Signature-256), inbound (batch → events → bot text),
api (Send API, sender actions, error policy), threads (windows, receipts, pause state), outbound (bot
events → messages), channel (processing after the 200, bus delivery), webhook (HTTP).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiohttp import web

from bot.channels.messenger.channel import MessengerChannel
from bot.channels.messenger.config import MessengerSettings
from bot.channels.messenger.webhook import MESSENGER, add_routes
from bot.channels.push import mount

log = logging.getLogger(__name__)

__all__ = ["MESSENGER", "MessengerChannel", "MessengerSettings", "setup"]


def setup(app: web.Application, settings: MessengerSettings | None = None,
          clock: Callable[[], float] = time.time) -> MessengerChannel | None:
    """Mount the channel when configured (routes, and its lifecycle after the core's); None otherwise."""
    settings = settings or MessengerSettings.from_env()
    if settings is None:
        return None
    log.info("Messenger channel mounted at /webhooks/messenger (Graph %s)", settings.graph_api_version)
    return mount(app, MESSENGER, MessengerChannel(settings, clock), add_routes)
