"""WeChat Official Account settings (docs/channels.md §1; README "WeChat"): `channels.wechat` in endpoints.yml
and `WECHAT_*` environment variables (`WECHAT_TOKEN` → `token`), read by `bot/channels/settings.py`.

Secrets are `SecretStr` and validation errors never echo input values, so nothing secret reaches a log line,
an exception message or a repr. Budgets and windows are settings so tests can shrink them.
"""

from __future__ import annotations

import base64
import re
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from bot.channels.push.channel import PushSettings

_AES_KEY = re.compile(r"[A-Za-z0-9]{43}")


class WeChatSettings(PushSettings):
    token: SecretStr  # WECHAT_TOKEN: the "Token" of the server configuration (signs every push)
    appid: str = Field(min_length=1)  # WECHAT_APPID
    appsecret: SecretStr  # WECHAT_APPSECRET: for the access token (custom-send, typing)
    encoding_aes_key: SecretStr | None = None  # WECHAT_ENCODING_AES_KEY: 43 chars, required in safe mode
    api_base: str = "https://api.weixin.qq.com"  # WECHAT_API_BASE
    mode: Literal["safe", "plaintext"] = "safe"  # WECHAT_MODE: plaintext only when explicitly chosen
    reply_budget_s: float = Field(4.0, gt=0, le=4.8)  # passive reply if the bot is ready within this
    freshness_s: float = Field(300.0, gt=0)  # |now - timestamp| allowed (our replay policy)
    token_endpoint: Literal["stable", "classic"] = "stable"  # /cgi-bin/stable_token preferred
    token_margin_s: float = Field(300.0, ge=0)  # refresh this long before the token expires
    kf_account: str | None = None  # optional "agent@gh_account" shown as the sender of agent replies
    quota_per_message: int = Field(5, ge=1)  # custom-send messages allowed per shopper message...
    window_s: float = Field(48 * 3600.0, gt=0)  # ...within this long after it
    event_quota: int = Field(3, ge=0)  # after a follow / scan / menu click...
    event_window_s: float = Field(60.0, gt=0)  # ...within this long
    queue_reserve: int = Field(2, ge=0)  # queue-position notices never use the last N messages
    text_max_bytes: int = Field(2000, ge=100)  # one message's text (WeChat's limit is ~2048 bytes)
    options_ttl_s: float = Field(3600.0, gt=0)  # "reply 1/2/3" options stay valid this long

    @model_validator(mode="after")
    def _check_mode(self) -> WeChatSettings:
        key = self.encoding_aes_key.get_secret_value() if self.encoding_aes_key else None
        if key is not None:
            if not _AES_KEY.fullmatch(key) or len(base64.b64decode(key + "=")) != 32:
                raise ValueError("WECHAT_ENCODING_AES_KEY must be the 43 letters and digits from the console")
        elif self.mode == "safe":
            raise ValueError("safe mode (the default) needs WECHAT_ENCODING_AES_KEY; set WECHAT_MODE=plaintext "
                             "only if the account really is in plaintext mode")
        return self

    @property
    def api_root(self) -> str:
        return self.api_base.rstrip("/")
