"""The chat bubble's settings: `channels.widget` in endpoints.yml and `WIDGET_*` environment variables
(`WIDGET_ALLOWED_ORIGINS=https://a.example,https://b.example`), read by bot/channels/settings.py. Limits are
enforced on the server; the panel gets them too."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

UPLOAD_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf")
_ORIGIN = re.compile(r"^(https?)://([a-z0-9.-]+|\[[0-9a-f:.]+\])(:\d{1,5})?$")


class WidgetPayloads(BaseModel):
    """What the panel's own buttons send to the bot (Rasa payloads), so a shop can rename the intents."""

    model_config = ConfigDict(extra="forbid")
    handoff: str = "/human_handoff"  # "talk to a person"
    cancel: str = "/cancel_handoff"  # "stop waiting" while in the queue
    csat: str = "/csat"  # the star rating: sent as /csat{"score": N}


class WidgetSettings(BaseModel):
    """The chat bubble (`channels.widget`)."""

    model_config = ConfigDict(extra="forbid")
    # Pages allowed to open the chat socket and call /api/widget/* from a browser (scheme://host[:port]).
    allowed_origins: list[str] = ["http://127.0.0.1:5005", "http://localhost:5005"]
    allow_same_origin: bool = True  # pages served by this kefu itself (the demo shop, /help) on any port
    session_ttl_days: float = Field(30, gt=0, le=366)
    max_frame_bytes: int = Field(16 * 1024, ge=1024, le=1024 * 1024)
    max_text_chars: int = Field(2000, ge=1, le=5000)
    messages_per_minute: float = Field(20, gt=0)  # per conversation, after a burst of `message_burst`
    message_burst: int = Field(5, ge=1)
    # per client address, all its conversations together (generous: shoppers behind one NAT share an address)
    client_messages_per_minute: float = Field(120, gt=0)
    client_message_burst: int = Field(30, ge=1)
    max_bad_frames: int = Field(5, ge=1)  # garbled/unknown/oversize frames before the socket is closed
    heartbeat_s: float = Field(25, gt=0)
    history_limit: int = Field(100, ge=1, le=1000)
    upload_dir: Path = Path("uploads")  # relative to the project; never under a served static folder
    max_upload_bytes: int = Field(10 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024)
    upload_types: list[str] = list(UPLOAD_TYPES)
    # What one conversation may keep (more: 429 for files, 413 for bytes), and for how long (then removed).
    max_conversation_uploads: int = Field(50, ge=1, le=100_000)
    max_conversation_upload_bytes: int = Field(100 * 1024 * 1024, ge=1024)
    upload_retention_days: float = Field(90, gt=0, le=3650)
    payloads: WidgetPayloads = WidgetPayloads()

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        cleaned = []
        for origin in origins:
            value = origin.strip().rstrip("/").lower()
            if not _ORIGIN.match(value):
                raise ValueError(f"{origin!r} is not an origin like https://shop.example"
                                 " (scheme://host[:port], no path, no wildcard)")
            cleaned.append(value)
        return cleaned

    @field_validator("upload_types")
    @classmethod
    def _types(cls, types: list[str]) -> list[str]:
        unknown = sorted(set(types) - set(UPLOAD_TYPES))
        if unknown:
            raise ValueError(f"{unknown} cannot be checked; allowed: {list(UPLOAD_TYPES)}")
        return types

    def upload_path(self, project_dir: Path) -> Path:
        return self.upload_dir if self.upload_dir.is_absolute() else project_dir / self.upload_dir


