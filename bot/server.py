"""The aiohttp application: `create_app(settings)` assembles stores, the model, the agent and every route."""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from bot import client_ip, knowledge, pages
from bot.action_runner import ActionRunner, InProcessActionRunner, RemoteActionRunner
from bot.agent import Agent
from bot.app_keys import AGENT, METRICS, RATE_LIMITS, SETTINGS, STORES
from bot.channels.erasure import upload_dir
from bot.channels.registry import mount_channels
from bot.channels.settings import ConfigError
from bot.client_ip import LOOPBACK, TRUSTED_PROXIES_ENV, AddressListError, Network, networks
from bot.endpoints import Endpoints, load_endpoints
from bot.erasure import ConversationEraser
from bot.http import HTTPError, check_token, error_middleware, json_dumps, read_json
from bot.identity import SECRET_ENV, IdentityCheck
from bot.metrics import Metrics
from bot.model import ModelError, TrainedModel, latest_archive, load_model, load_newest
from bot.openapi import document as openapi_document
from bot.ratelimit import EXEMPT_ENV, RateLimits
from bot.stores import create_stores
from handoff.app import create_handoff, setup_handoff
from handoff.app_keys import ERASE_CONVERSATION, HANDOFF

log = logging.getLogger(__name__)
api = web.RouteTableDef()
_NETLOC = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")


@dataclass
class ServerSettings:
    project_dir: Path = Path(".")
    model_path: Path | None = None  # default: newest archive in project_dir/models
    auth_token: str | None = field(default=None, repr=False)
    identity_secret: str | None = field(default=None, repr=False)  # KEFU_IDENTITY_SECRET: signed customer ids
    metrics_token: str | None = field(default=None, repr=False)  # KEFU_METRICS_TOKEN: opens /metrics only
    public_url: str | None = None  # KEFU_PUBLIC_URL: where browsers reach us (pages' script src and CSP)
    trusted_proxies: tuple[Network, ...] = LOOPBACK  # KEFU_TRUSTED_PROXIES: whose X-Forwarded-For is believed
    rate_limit_exempt: tuple[Network, ...] = ()  # KEFU_RATE_LIMIT_EXEMPT: clients that skip rate limits
    redis_url: str | None = None
    db_path: Path | None = None  # default: project_dir/kefu.db
    endpoints: Endpoints = field(default_factory=Endpoints)
    preloaded_model: TrainedModel | None = field(default=None, repr=False)  # workers forked from a loaded model

    @classmethod
    def for_project(cls, project_dir: Path, **overrides) -> ServerSettings:
        endpoints = load_endpoints(project_dir / "endpoints.yml")
        settings = cls(project_dir=project_dir, endpoints=endpoints, **overrides)
        settings.redis_url = settings.redis_url or endpoints.redis_url()
        settings.identity_secret = settings.identity_secret or os.environ.get(SECRET_ENV) or None
        settings.metrics_token = settings.metrics_token or os.environ.get("KEFU_METRICS_TOKEN") or None
        settings.public_url = check_public_url(settings.public_url or os.environ.get("KEFU_PUBLIC_URL") or None)
        settings.trusted_proxies = networks_from_env(TRUSTED_PROXIES_ENV, settings.trusted_proxies)
        settings.rate_limit_exempt = networks_from_env(EXEMPT_ENV, settings.rate_limit_exempt)
        return settings

    def load_model(self) -> TrainedModel:
        """The model to serve: --model as given, else the newest archive in models/ that loads."""
        if self.preloaded_model is not None:
            return self.preloaded_model
        if self.model_path is not None:
            return load_model(self.model_path)
        return load_newest(self.project_dir / "models")

    def resolve_model(self) -> Path:
        path = self.model_path or latest_archive(self.project_dir / "models")
        if path is None:
            raise ModelError(f"no trained model in {self.project_dir / 'models'}: run `kefu train`")
        return path


def check_public_url(url: str | None) -> str | None:
    """`scheme://host[:port]` (a path is kept) without a trailing slash; a clear error for anything else."""
    if url is None:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment \
            or not _NETLOC.match(parts.netloc):
        raise ConfigError(f"KEFU_PUBLIC_URL / --public-url must look like https://shop.example[:port], not {url!r}")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def networks_from_env(variable: str, default: tuple[Network, ...]) -> tuple[Network, ...]:
    """A comma-separated CIDR list from the environment; unset or empty: `default`; `none`: no address."""
    text = os.environ.get(variable, "").strip()
    if not text:
        return default
    if text.lower() == "none":
        return ()
    try:
        return networks(text, variable)
    except AddressListError as exc:
        raise ConfigError(str(exc)) from None


def action_runner(settings: ServerSettings) -> ActionRunner:
    endpoint = settings.endpoints.action_endpoint
    if endpoint and endpoint.url:
        return RemoteActionRunner(endpoint.url)
    return InProcessActionRunner(settings.project_dir)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    loop = asyncio.get_running_loop()
    model: TrainedModel = await loop.run_in_executor(None, settings.load_model)
    stores = create_stores(settings.redis_url, settings.db_path or settings.project_dir / "kefu.db",
                           redis_prefix=settings.endpoints.redis_prefix())
    if stores.startup_check is not None:
        await stores.startup_check()
    actions = action_runner(settings)
    app[STORES] = stores
    app[RATE_LIMITS] = RateLimits(stores.kv, settings.rate_limit_exempt)
    app[AGENT] = Agent(model, stores, actions, create_handoff(app, stores), metrics=app[METRICS],
                       identity=IdentityCheck(settings.identity_secret))
    app[ERASE_CONVERSATION] = ConversationEraser(
        stores, app[HANDOFF], upload_dir(settings.endpoints.channels, settings.project_dir),
        forget_in_memory=app[AGENT].forget_conversation).erase
    log.info("kefu ready: model %s, %s store", model.path, "redis" if settings.redis_url else "sqlite")
    yield
    if isinstance(actions, RemoteActionRunner):
        await actions.close()
    app[AGENT].executor.shutdown(wait=False, cancel_futures=True)
    await stores.close()


def create_app(settings: ServerSettings) -> web.Application:
    middlewares = [error_middleware, client_ip.middleware(settings.trusted_proxies)]
    app = web.Application(middlewares=middlewares, client_max_size=12 * 1024 * 1024)
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app.cleanup_ctx.append(_lifecycle)
    app.add_routes(api)
    setup_handoff(app)
    mount_channels(app, settings.endpoints.channels)  # each after the core's and the handoff's lifecycles
    knowledge.mount(app)
    pages.mount(app)
    return app


# -- the HTTP API (Rasa-compatible where Rasa has the endpoint) ------------------------------------------------

HEALTH_TIMEOUT_S = 2.0


@api.get("/health")
async def health(request: web.Request) -> web.Response:
    """200 when this worker can serve; 503 naming the part that is down (a load balancer takes it out)."""
    agent, stores = request.app[AGENT], request.app[STORES]
    down: dict[str, str] = {}
    if stores.ping is not None:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_S):
                await stores.ping()
        except Exception as exc:  # any failure to answer is "down"; what exactly goes to the log, not out
            log.warning("health: the %s store does not answer: %r", stores.backend, exc)
            down[stores.backend] = f"not answering ({type(exc).__name__})"
    body = {"status": "down" if down else "ok", "model": agent.model.path.name if agent.model.path else None,
            "fingerprint": agent.model.fingerprint, "store": stores.backend}
    if down:
        body["down"] = down
    return web.json_response(body, status=503 if down else 200)


@api.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    check_token(request, settings.auth_token, loopback_without_token=True, also=settings.metrics_token)
    return web.Response(body=request.app[METRICS].render(), content_type="text/plain")


@api.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    """The whole HTTP API as OpenAPI 3.1 (bot/openapi.py), for client authors and fuzzers."""
    return web.json_response(openapi_document(), dumps=json_dumps)


@api.post("/model/parse")
async def model_parse(request: web.Request) -> web.Response:
    check_token(request, request.app[SETTINGS].auth_token)
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        raise HTTPError(400, 'body must be {"text": "…"} with a string text')
    if len(body["text"]) > 5000:
        raise HTTPError(400, "text is longer than 5000 characters")
    result = await request.app[AGENT].parse(body["text"])
    return web.json_response(result, dumps=json_dumps)


@api.get("/conversations/{conversation_id}/tracker")
async def conversation_tracker(request: web.Request) -> web.Response:
    check_token(request, request.app[SETTINGS].auth_token, loopback_without_token=True)
    tracker = await request.app[AGENT].tracker(request.match_info["conversation_id"])
    if tracker is None:
        raise HTTPError(404, "unknown conversation")
    body = tracker.as_rasa_dict()
    if len(tracker.events) > 500:  # a long conversation's JSON takes a while to write: not on the event loop
        return web.Response(text=await asyncio.to_thread(json_dumps, body), content_type="application/json")
    return web.json_response(body, dumps=json_dumps)
