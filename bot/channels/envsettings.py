"""Channel settings from environment variables, validated by a pydantic model, without leaking values.

`WECHAT_TOKEN` fills field `token` of the WeChat model, and so on. A channel with none of its required
variables is "not configured" (None: not mounted); one with only some of them is a configuration error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A channel is partly configured or a value is invalid (the message names variables, never values)."""


def load_settings(model: type[M], prefix: str, required: tuple[str, ...],
                  environ: Mapping[str, str] | None = None) -> M | None:
    """Read `<PREFIX><FIELD>` for every field of `model`; None if none of `required` is set."""
    environ = os.environ if environ is None else environ
    values = {name: environ[prefix + name.upper()] for name in model.model_fields
              if environ.get(prefix + name.upper(), "").strip()}
    if not any(name in values for name in required):
        return None
    missing = [prefix + name.upper() for name in required if name not in values]
    if missing:
        raise ConfigError(f"{prefix.rstrip('_')} is partly configured: set {', '.join(missing)}")
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(_problem(prefix, err) for err in exc.errors(include_input=False, include_url=False))
        raise ConfigError(f"invalid {prefix.rstrip('_')} settings: {problems}") from None


def _problem(prefix: str, err: dict) -> str:
    where = f"{prefix}{str(err['loc'][0]).upper()}: " if err.get("loc") else ""
    return where + str(err["msg"]).removeprefix("Value error, ")
