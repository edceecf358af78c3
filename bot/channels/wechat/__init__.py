"""WeChat Official Account channel: `GET/POST /webhooks/wechat` (docs/channels.md §1, checklist W1–W19).

Configured only from the environment (`WeChatSettings`, config.py): WECHAT_TOKEN, WECHAT_APPID,
WECHAT_APPSECRET, WECHAT_ENCODING_AES_KEY, WECHAT_API_BASE, WECHAT_MODE (safe unless `plaintext`), plus
tuning such as WECHAT_REPLY_BUDGET_S. Without them the channel is not mounted (the route 404s).

Modules: config (settings), crypto (signatures, AES), xml (parse/render), inbound (push → message),
api (token, custom-send, typing), allowance (48 h window and quota), outbound (rendering, custom-send within
the allowance), channel (a push's conversation side, bus delivery), webhook (HTTP).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiohttp import web

from bot.channels.push import mount
from bot.channels.wechat.channel import WeChatChannel
from bot.channels.wechat.config import WeChatSettings
from bot.channels.wechat.webhook import WECHAT, add_routes

log = logging.getLogger(__name__)

__all__ = ["WECHAT", "WeChatChannel", "WeChatSettings", "setup"]


def setup(app: web.Application, settings: WeChatSettings | None = None,
          clock: Callable[[], float] = time.time) -> WeChatChannel | None:
    """Mount the channel when configured (routes, and its lifecycle after the core's); None otherwise."""
    settings = settings or WeChatSettings.from_env()
    if settings is None:
        return None
    log.info("WeChat channel mounted at /webhooks/wechat (%s mode)", settings.mode)
    return mount(app, WECHAT, WeChatChannel(settings, clock), add_routes)
