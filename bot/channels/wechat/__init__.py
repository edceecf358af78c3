"""WeChat Official Account channel: `GET/POST /webhooks/wechat` (docs/channels.md §1, checklist W1–W19).

Settings (`config.py`): `channels.wechat` in endpoints.yml or WECHAT_TOKEN, WECHAT_APPID, WECHAT_APPSECRET,
WECHAT_ENCODING_AES_KEY, WECHAT_API_BASE, WECHAT_MODE (safe unless `plaintext`), plus tuning such as
WECHAT_REPLY_BUDGET_S. Without them the channel is not mounted (the route 404s).

Modules: config (settings), crypto (signatures, AES), xml (parse/render), inbound (push → message),
api (token, custom-send, typing), allowance (48 h window and quota), outbound (rendering, custom-send within
the allowance), channel (`WeChatChannel`: a push's conversation side, bus delivery), webhook (HTTP).
"""

from __future__ import annotations

from bot.channels.wechat.channel import WeChatChannel
from bot.channels.wechat.config import WeChatSettings

WECHAT = WeChatChannel.key  # where the app keeps the channel

__all__ = ["WECHAT", "WeChatChannel", "WeChatSettings"]
