"""Facebook Messenger settings (docs/channels.md §2; README "Messenger"): `channels.messenger` in endpoints.yml
and `MESSENGER_*` environment variables (`MESSENGER_APP_SECRET` → `app_secret`), read by
`bot/channels/settings.py`.

Secrets are `SecretStr`; validation errors never echo values. Windows and retry timings are settings so
tests can shrink them.
"""

from __future__ import annotations

from pydantic import Field, SecretStr

from bot.channels.push.channel import PushSettings


class MessengerSettings(PushSettings):
    verify_token: SecretStr  # MESSENGER_VERIFY_TOKEN: what you typed as "Verify token" in the App Dashboard
    app_secret: SecretStr  # MESSENGER_APP_SECRET: signs every webhook POST (X-Hub-Signature-256)
    page_access_token: SecretStr  # MESSENGER_PAGE_ACCESS_TOKEN: for the Send API
    graph_api_base: str = "https://graph.facebook.com"  # MESSENGER_GRAPH_API_BASE
    graph_api_version: str = Field("v25.0", pattern=r"^v\d+\.\d+$")  # MESSENGER_GRAPH_API_VERSION
    human_agent: bool = False  # MESSENGER_HUMAN_AGENT: App Review granted the Human Agent permission
    app_id: str | None = None  # MESSENGER_APP_ID: recognise our own echoes also by app_id
    get_started_payload: str = "GET_STARTED"  # the Get Started button's payload → the welcome (/greet)
    max_body_bytes: int = Field(1024 * 1024, gt=0)
    http_timeout_s: float = Field(10.0, gt=0)
    response_window_s: float = Field(24 * 3600.0, gt=0)  # RESPONSE allowed this long after the shopper wrote
    human_agent_window_s: float = Field(7 * 24 * 3600.0, gt=0)  # HUMAN_AGENT tag allowed this long
    human_pause_s: float = Field(1800.0, gt=0)  # bot silent this long after a person replied in Page Inbox
    sender_action_wait_s: float = Field(1.0, ge=0)  # a reply waits at most this long for mark_seen/typing
    text_max_chars: int = Field(2000, ge=20)
    quick_replies_max: int = Field(13, ge=1)
    quick_reply_title_max: int = Field(20, ge=1)

    @property
    def messages_url(self) -> str:
        return f"{self.graph_api_base.rstrip('/')}/{self.graph_api_version}/me/messages"
