"""endpoints.yml: where the stores and the action server are. Secrets come only from ${ENV_VARS}."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.formats.yaml_io import DataError, line_of, load_yaml, plain

_ENV = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


class StoreEndpoint(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str = "sqlite"
    url: str | None = None
    db: str | None = None


class ActionEndpoint(BaseModel):
    model_config = ConfigDict(extra="allow")
    url: str | None = None


UPLOAD_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf")
_ORIGIN = re.compile(r"^(https?)://([a-z0-9.-]+|\[[0-9a-f:.]+\])(:\d{1,5})?$")


class WidgetPayloads(BaseModel):
    """What the panel's own buttons send to the bot (Rasa payloads), so a shop can rename the intents."""

    model_config = ConfigDict(extra="forbid")
    handoff: str = "/human_handoff"  # "talk to a person"
    cancel: str = "/cancel_handoff"  # "stop waiting" while in the queue
    csat: str = "/csat"  # the star rating: sent as /csat{"score": N}


class WidgetSettings(BaseModel):
    """The chat bubble (`widget:` in endpoints.yml). Limits are enforced on the server; the panel gets them too."""

    model_config = ConfigDict(extra="forbid")
    # Pages allowed to open the chat socket and call /api/widget/* from a browser (scheme://host[:port]).
    allowed_origins: list[str] = ["http://127.0.0.1:5005", "http://localhost:5005"]
    allow_same_origin: bool = True  # pages served by this kefu itself (the demo shop, /help) on any port
    session_ttl_days: float = Field(30, gt=0, le=366)
    max_frame_bytes: int = Field(16 * 1024, ge=1024, le=1024 * 1024)
    max_text_chars: int = Field(2000, ge=1, le=5000)
    messages_per_minute: float = Field(20, gt=0)  # per conversation, after a burst of `message_burst`
    message_burst: int = Field(5, ge=1)
    max_bad_frames: int = Field(5, ge=1)  # garbled/unknown/oversize frames before the socket is closed
    heartbeat_s: float = Field(25, gt=0)
    history_limit: int = Field(100, ge=1, le=1000)
    upload_dir: Path = Path("uploads")  # relative to the project; never under a served static folder
    max_upload_bytes: int = Field(10 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024)
    upload_types: list[str] = list(UPLOAD_TYPES)
    payloads: WidgetPayloads = WidgetPayloads()

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        cleaned = []
        for origin in origins:
            value = origin.strip().rstrip("/").lower()
            if not _ORIGIN.match(value):
                raise ValueError(f"widget.allowed_origins: {origin!r} is not an origin like https://shop.example"
                                 " (scheme://host[:port], no path, no wildcard)")
            cleaned.append(value)
        return cleaned

    @field_validator("upload_types")
    @classmethod
    def _types(cls, types: list[str]) -> list[str]:
        unknown = sorted(set(types) - set(UPLOAD_TYPES))
        if unknown:
            raise ValueError(f"widget.upload_types: {unknown} cannot be checked; allowed: {list(UPLOAD_TYPES)}")
        return types

    def upload_path(self, project_dir: Path) -> Path:
        return self.upload_dir if self.upload_dir.is_absolute() else project_dir / self.upload_dir


class Endpoints(BaseModel):
    model_config = ConfigDict(extra="allow")
    tracker_store: StoreEndpoint | None = None
    lock_store: StoreEndpoint | None = None
    action_endpoint: ActionEndpoint | None = None
    widget: WidgetSettings = WidgetSettings()

    def redis_prefix(self) -> str:
        store = self.tracker_store
        return str(getattr(store, "key_prefix", None) or "kefu").rstrip(":") + ":" if store else "kefu:"

    def redis_url(self) -> str | None:
        """REDIS_URL wins; else a redis tracker/lock store named here."""
        if os.environ.get("REDIS_URL"):
            return os.environ["REDIS_URL"]
        for store in (self.tracker_store, self.lock_store):
            if store and store.type == "redis" and store.url:
                url = store.url
                return url if url.startswith(("redis://", "rediss://", "unix://")) else f"redis://{url}"
        return None


def _substitute(value: Any) -> Any:
    if isinstance(value, str):
        return _ENV.sub(lambda m: os.environ.get(m.group(1), m.group(2) or ""), value)
    if isinstance(value, dict):
        return {k: _substitute(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v) for v in value]
    return value


def load_endpoints(path: Path) -> Endpoints:
    if not path.exists():
        return Endpoints()
    raw = load_yaml(path) or {}
    if not isinstance(raw, dict):
        raise DataError("endpoints.yml must be a mapping", path, line_of(raw))
    try:
        return Endpoints.model_validate(_substitute(plain(raw)))
    except ValueError as exc:
        raise DataError(f"invalid endpoints: {exc}", path) from None
