"""Schemathesis against a live server (issue 14, "Fuzzing"): every operation of `/openapi.json` gets generated
requests, valid and invalid, and must never answer 5xx or anything the document does not promise (status, content
type, body schema).

The server is the real app on a real port (starter model, SQLite, every channel mounted), with an API token; each
request carries the credential its operation takes, made the way the other tests make them: the API token, an
agent session from `Agents.open_session`, a widget session from `POST /api/widget/session`. `make test` runs a few
examples per operation (KEFU_FUZZ_EXAMPLES, default 5); `make fuzz` runs many more.
"""

from __future__ import annotations

import asyncio
import copy
import os
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bot.client_ip import networks
from bot.openapi import document
from bot.server import ServerSettings, create_app
from handoff.app_keys import HANDOFF, HANDOFF_SETTINGS
from handoff.settings import HandoffSettings
from tests.test_openapi import every_channel

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = int(os.environ.get("KEFU_FUZZ_EXAMPLES", "5"))
API_TOKEN = "fuzz-api-token"
AGENT_NAME = "fuzzer"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

SHOPPER = "fuzz-shopper"  # a REST conversation waiting for a person, made by the `live` fixture


def with_real_conversation(doc: dict[str, Any]) -> dict[str, Any]:
    """The document with the waiting conversation as the example id, so the explicit examples claim, answer,
    transfer and close a real conversation (random ids mostly meet 404)."""
    doc = copy.deepcopy(doc)
    for item in doc["paths"].values():
        for op in item.values():
            for parameter in op.get("parameters", []):
                if parameter["name"] in ("cid", "conversation_id"):
                    parameter["example"] = SHOPPER
    return doc


schema = schemathesis.openapi.from_dict(with_real_conversation(document()))


class LiveServer:
    """The app served on 127.0.0.1 from a thread of its own (schemathesis calls it synchronously)."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(app)
        self.thread = threading.Thread(target=self.loop.run_forever, name="live-server", daemon=True)
        self.url = ""

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        self.thread.start()
        self.run(self.runner.setup(), timeout=300)
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.run(site.start())
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    def stop(self) -> None:
        self.run(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class Credentials:
    """The credential each operation takes: API token, agent session or widget session (or none)."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        agents = server.app[HANDOFF].agents
        server.run(agents.add(AGENT_NAME, "fuzz-password-1", languages=["zh", "en"]))
        self.agent = server.run(agents.open_session(AGENT_NAME))
        answer = requests.post(f"{server.url}/api/widget/session", json={}, timeout=30)
        answer.raise_for_status()
        self.widget = answer.json()["token"]

    def for_operation(self, path: str, method: str) -> dict[str, str]:
        security = document()["paths"][path][method.lower()].get("security", [])
        names = {name for requirement in security for name in requirement}
        if "apiToken" in names:
            return {"Authorization": f"Bearer {API_TOKEN}"}
        if "agentSession" in names:
            if path == "/api/agent/logout":  # a session of its own: the others' must outlive it
                own = self.server.run(self.server.app[HANDOFF].agents.open_session(AGENT_NAME))
                return {"Authorization": f"Bearer {own}"}
            return {"Authorization": f"Bearer {self.agent}"}
        if "widgetSession" in names:
            return {"Authorization": f"Bearer {self.widget}"}
        return {}


@pytest.fixture(scope="module")
def live(starter_model, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Credentials]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    server_settings = ServerSettings.for_project(ROOT, model_path=starter_model, db_path=tmp / "kefu.db",
                                                 auth_token=API_TOKEN)
    server_settings.redis_url = None
    server_settings.endpoints.channels = every_channel(tmp)
    # the fuzzer is one client sending thousands of requests: rate limits would answer most of them 429 and
    # leave the bodies behind unexplored (limits have their own tests: test_rest_limits, test_widget_limits)
    server_settings.rate_limit_exempt = networks("127.0.0.0/8", "rate_limit_exempt")
    app = create_app(server_settings)
    app[HANDOFF_SETTINGS] = HandoffSettings(hours={"daily": "24h"}, tick_s=0.5)
    server = LiveServer(app)
    server.start()
    try:
        # a conversation waiting for a person, so the queue and the console's lists are not empty
        requests.post(f"{server.url}/webhooks/rest/webhook", json={"sender": SHOPPER, "message": "转人工"},
                      timeout=60).raise_for_status()
        tracker = requests.get(f"{server.url}/conversations/{SHOPPER}/tracker", timeout=30,
                               headers={"Authorization": f"Bearer {API_TOKEN}"}).json()
        assert "handoff_requested" in [e["event"] for e in tracker["events"]], tracker["events"]
        yield server, Credentials(server)
    finally:
        server.stop()


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_operation_answers_5xx_or_outside_its_description(case, live) -> None:
    server, credentials = live
    case.headers = {**(case.headers or {}), **credentials.for_operation(case.operation.path, case.operation.method)}
    case.call_and_validate(base_url=server.url, checks=CHECKS, timeout=60, allow_redirects=False)
