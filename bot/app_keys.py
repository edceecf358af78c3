"""Typed keys for what the aiohttp app holds (no module-level mutable state)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from bot.agent import Agent
    from bot.metrics import Metrics
    from bot.ratelimit import RateLimits
    from bot.server import ServerSettings
    from bot.stores import Stores

AGENT: web.AppKey[Agent] = web.AppKey("agent")
STORES: web.AppKey[Stores] = web.AppKey("stores")
SETTINGS: web.AppKey[ServerSettings] = web.AppKey("settings")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
RATE_LIMITS: web.AppKey[RateLimits] = web.AppKey("rate_limits")
