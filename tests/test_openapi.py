"""`/openapi.json` describes the API the server really has (issue 14, "Fuzzing"): every route in the document and
every documented operation a route, compared both ways, with WeChat and Messenger configured so their webhooks
are mounted. A client author reads the document; a fuzzer (tests/test_api_fuzz.py) trusts it."""

from __future__ import annotations

from pathlib import Path

import schemathesis
from aiohttp import web

from bot.openapi import document
from bot.server import ServerSettings, create_app

ROOT = Path(__file__).resolve().parent.parent
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def every_channel(tmp_path: Path) -> dict[str, dict]:
    """Settings that mount every channel; the upstream APIs point at a closed port (nothing leaves the machine)."""
    return {
        "widget": {"upload_dir": tmp_path / "uploads"},
        "wechat": {"token": "fuzz-token", "appid": "wx-fuzz", "appsecret": "fuzz-secret",
                   "encoding_aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
                   "api_base": "http://127.0.0.1:9"},
        "messenger": {"verify_token": "fuzz-verify", "app_secret": "fuzz-app-secret",
                      "page_access_token": "fuzz-page-token", "graph_api_base": "http://127.0.0.1:9"},
    }


def app_routes(app: web.Application) -> set[tuple[str, str]]:
    """(path template, method) of every route; aiohttp's automatic HEAD for a GET is not a route of ours."""
    found = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or info["prefix"].rstrip("/") + "/{filename}"
        found.add((path, route.method.lower()))
    return found


def documented(doc: dict) -> set[tuple[str, str]]:
    return {(path, method) for path, item in doc["paths"].items() for method in item if method in METHODS}


def test_the_document_names_exactly_the_routes_the_app_has(tmp_path: Path) -> None:
    settings = ServerSettings.for_project(ROOT, db_path=tmp_path / "kefu.db")
    settings.endpoints.channels = every_channel(tmp_path)
    routes = app_routes(create_app(settings))
    doc = document()
    assert ("/webhooks/wechat", "post") in routes and ("/webhooks/messenger", "post") in routes
    assert sorted(routes - documented(doc)) == [], "routes without a description in bot/openapi.py"
    assert sorted(documented(doc) - routes) == [], "described operations the app does not have"


def test_every_operation_says_what_it_answers_and_errors_are_json() -> None:
    doc = document()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            statuses = set(op["responses"])
            assert statuses and all(s.isdigit() for s in statuses), (path, method)
            assert any(s.startswith("2") or s in ("101", "302", "303") for s in statuses), (path, method)
            for status, answer in op["responses"].items():
                schema = answer.get("content", {}).get("application/json", {}).get("schema")
                if status >= "400" and schema is not None and path != "/health":  # 503 is its own report
                    assert schema == {"$ref": "#/components/schemas/Error"}, (path, method, status)


def test_the_document_is_valid_openapi_that_a_fuzzer_loads() -> None:
    schema = schemathesis.openapi.from_dict(document())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(documented(document()))


async def test_the_server_serves_it(aiohttp_client, starter_model, tmp_path: Path) -> None:
    settings = ServerSettings.for_project(ROOT, model_path=starter_model, db_path=tmp_path / "kefu.db")
    settings.redis_url = None
    client = await aiohttp_client(create_app(settings))
    resp = await client.get("/openapi.json")
    assert resp.status == 200 and resp.content_type == "application/json"
    body = await resp.json()
    assert body["openapi"].startswith("3.") and "/webhooks/rest/webhook" in body["paths"]
    assert body == document()
