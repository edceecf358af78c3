"""Wiring the handoff side into the aiohttp app: the service (the engine's HandoffPort), the console routes and
the background tasks, all app-scoped.

    create_app:  setup_handoff(app)                       # routes + start/stop of the background tasks
    _lifecycle:  Agent(..., create_handoff(app, stores))  # the service, once the stores are open
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from bot.app_keys import SETTINGS
from bot.stores import Stores
from handoff import console
from handoff.app_keys import CANNED, HANDOFF, HANDOFF_SETTINGS, HUB
from handoff.canned import CannedReplies
from handoff.hub import ConsoleHub
from handoff.service import HandoffService
from handoff.settings import load_settings


def create_handoff(app: web.Application, stores: Stores) -> HandoffService:
    """The handoff service for this app (settings from HANDOFF_SETTINGS if set, else the project's handoff.yml)."""
    project_dir = app[SETTINGS].project_dir
    settings = app.get(HANDOFF_SETTINGS) or load_settings(project_dir / "handoff.yml")
    service = HandoffService(stores, settings)
    app[HANDOFF] = service
    app[HUB] = ConsoleHub(stores.bus, service.records)
    app[CANNED] = CannedReplies.load(project_dir / "data" / "canned_replies.yml")
    return service


async def _background(app: web.Application) -> AsyncIterator[None]:
    """Runs after the app's stores and agent are set up, and stops before they close."""
    service = app.get(HANDOFF)
    if service is None:  # an app without the handoff service (nothing to run)
        yield
        return
    await app[HUB].start()
    service.start()
    yield
    await service.stop()
    await app[HUB].stop()


def setup_handoff(app: web.Application) -> None:
    app.add_routes(console.routes)
    app.cleanup_ctx.append(_background)
