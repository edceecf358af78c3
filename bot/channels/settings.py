"""The one place a channel's settings are read: `channels.<name>` in endpoints.yml, then `<NAME>_<FIELD>`
environment variables, which win; validated by the channel's pydantic model.

`WECHAT_TOKEN` fills field `token` of the WeChat settings, `WIDGET_ALLOWED_ORIGINS` (comma-separated, or a JSON
list) field `allowed_origins` of the bubble's, and so on. A channel whose settings have required fields (no
default: WeChat's token, Messenger's app secret…) runs only when configured: not at all (none of them set, no
section in endpoints.yml) means not mounted; partly (some set, or a section without them) is a `ConfigError`.
Messages name keys and variables, never values: secrets are `SecretStr`, and pydantic is told to hide inputs.
"""

from __future__ import annotations

import json
import os
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ValidationError


class ConfigError(ValueError):
    """A channel is partly configured or a value is invalid (the message names keys/variables, never values)."""


class Configurable(Protocol):
    name: ClassVar[str]
    settings_model: ClassVar[type[BaseModel]]


def env_prefix(name: str) -> str:
    return name.upper() + "_"


def load_settings(channel: type[Configurable], section: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> BaseModel | None:
    """The channel's settings, or None when a channel that needs settings has none at all."""
    environ = os.environ if environ is None else environ
    model, prefix = channel.settings_model, env_prefix(channel.name)
    from_env = {field: _env_value(model, field, environ[prefix + field.upper()]) for field in model.model_fields
                if environ.get(prefix + field.upper(), "").strip()}
    values = {**(section or {}), **from_env}

    def where(field: str) -> str:
        return prefix + field.upper() if field in from_env else f"channels.{channel.name}.{field}"

    required = [name for name, field in model.model_fields.items() if field.is_required()]
    if required:
        if not section and not any(field in values for field in required):
            return None
        missing = [field for field in required if field not in values]
        if missing:
            names = ", ".join(f"{prefix}{field.upper()} (or channels.{channel.name}.{field})" for field in missing)
            raise ConfigError(f"the {channel.name} channel is partly configured: set {names}")
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(_problem(err, where) for err in exc.errors(include_input=False, include_url=False))
        raise ConfigError(f"invalid {channel.name} channel settings: {problems}") from None


def _env_value(model: type[BaseModel], field: str, raw: str) -> Any:
    """A variable's text as the field wants it: lists comma-separated (or JSON), nested settings as JSON."""
    annotation = model.model_fields[field].annotation
    kind = typing.get_origin(annotation) or annotation
    if kind is list and not raw.lstrip().startswith("["):
        return [value.strip() for value in raw.split(",") if value.strip()]
    if kind in (list, dict) or (isinstance(kind, type) and issubclass(kind, BaseModel)):
        try:
            return json.loads(raw)
        except ValueError:
            return raw  # pydantic says what is wrong with it, by name
    return raw


def _problem(err: Any, where: Any) -> str:
    location = err.get("loc") or ()
    named = f"{where(str(location[0]))}{''.join(f'.{part}' for part in location[1:])}: " if location else ""
    return named + str(err["msg"]).removeprefix("Value error, ")
