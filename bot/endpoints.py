"""endpoints.yml: where the stores and the action server are, and the channels' settings (`channels:`, read with
their environment variables by bot/channels/settings.py). Secrets come only from ${ENV_VARS}."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

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


class Endpoints(BaseModel):
    model_config = ConfigDict(extra="allow", hide_input_in_errors=True)  # values may be secrets from ${VARS}
    tracker_store: StoreEndpoint | None = None
    lock_store: StoreEndpoint | None = None
    action_endpoint: ActionEndpoint | None = None
    # channel name -> its settings, as written; each channel's model checks them (bot/channels/settings.py)
    channels: dict[str, dict[str, Any] | None] = {}

    @model_validator(mode="before")
    @classmethod
    def _no_top_level_widget(cls, values: Any) -> Any:
        if isinstance(values, dict) and "widget" in values:
            raise ValueError("the chat bubble's settings moved: write `widget:` under `channels:`")
        return values

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
