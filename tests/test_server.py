"""The bot over HTTP, trained from the project's own starter data: what a shop's developer would call."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from bot.server import ServerSettings, create_app

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def client(aiohttp_client, starter_model, tmp_path):
    settings = ServerSettings.for_project(ROOT, model_path=starter_model, db_path=tmp_path / "kefu.db")
    settings.redis_url = None
    return await aiohttp_client(create_app(settings))


@pytest.fixture
async def token_client(aiohttp_client, starter_model, tmp_path):
    settings = ServerSettings.for_project(ROOT, model_path=starter_model, db_path=tmp_path / "kefu.db",
                                          auth_token="s3cret")
    settings.redis_url = None
    return await aiohttp_client(create_app(settings))


async def chat(client, sender: str, text: str) -> list[dict]:
    resp = await client.post("/webhooks/rest/webhook", json={"sender": sender, "message": text})
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def tracker(client, sender: str) -> dict:
    resp = await client.get(f"/conversations/{sender}/tracker")
    assert resp.status == 200
    return await resp.json()


async def test_english_shipping_question_is_answered_from_the_faq(client):
    replies = await chat(client, "en-1", "how many days does delivery take?")
    assert replies and replies[0]["recipient_id"] == "en-1"
    events = (await tracker(client, "en-1"))["events"]
    assert any(e["event"] == "action" and e["name"] == "utter_faq" for e in events)
    assert not any(ch >= "\u4e00" for ch in replies[0]["text"][:20]), "answered in English"


async def test_chinese_question_gets_a_chinese_answer(client):
    replies = await chat(client, "zh-1", "快递几天能到？")
    assert replies
    assert any("\u4e00" <= ch <= "\u9fff" for ch in replies[0]["text"])
    state = await tracker(client, "zh-1")
    assert state["slots"]["language"] == "zh"


async def test_model_parse_returns_rasa_shape_with_language_and_faq(client):
    resp = await client.post("/model/parse", json={"text": "运费多少钱"})
    body = await resp.json()
    assert set(body) >= {"text", "intent", "intent_ranking", "entities", "language", "faq"}
    assert body["language"] == "zh"
    assert body["faq"] and {"id", "score", "answer"} <= set(body["faq"][0])
    assert body["faq"][0]["score"] >= body["faq"][-1]["score"]


async def test_request_for_a_person_in_chinese_escalates_with_reason_and_candidates(aiohttp_client, starter_model,
                                                                                     tmp_path):
    # Someone is on duty at any hour (away, so nobody is auto-assigned): the shopper waits in line.
    from handoff.app_keys import HANDOFF, HANDOFF_SETTINGS
    from handoff.settings import HandoffSettings

    settings = ServerSettings.for_project(ROOT, model_path=starter_model, db_path=tmp_path / "kefu.db")
    settings.redis_url = None
    app = create_app(settings)
    app[HANDOFF_SETTINGS] = HandoffSettings(hours={"daily": "24h"})
    client = await aiohttp_client(app)
    await app[HANDOFF].agents.add("li", "password-1")
    await app[HANDOFF].agents.set_status("li", "away")
    await chat(client, "zh-2", "我的包裹坏了，能退款吗")
    replies = await chat(client, "zh-2", "转人工")
    assert any("人工" in (r.get("text") or "") for r in replies)
    events = (await tracker(client, "zh-2"))["events"]
    requested = [e for e in events if e["event"] == "handoff_requested"]
    assert requested and requested[0]["reason"] == "explicit_request"
    assert 1 <= len(requested[0]["candidates"]) <= 3
    assert any(e["event"] == "queued" and e["position"] >= 1 for e in events)
    # while a person holds the conversation the bot stays silent
    assert await chat(client, "zh-2", "你好？") == []


@pytest.mark.parametrize(
    "body, fragment",
    [
        (b"{not json", "not valid JSON"),
        (json.dumps({"message": "hi"}).encode(), "missing sender"),
        (json.dumps({"sender": "x"}).encode(), "missing message"),
        (json.dumps({"sender": "x", "message": 42}).encode(), "must be a string"),
        (json.dumps({"sender": "x", "message": "   "}).encode(), "empty"),
        (json.dumps({"sender": "x", "message": "a" * 5001}).encode(), "5000"),
        (json.dumps(["sender", "message"]).encode(), "JSON object"),
    ],
)
async def test_bad_input_gets_400_and_stores_nothing(client, body, fragment):
    resp = await client.post("/webhooks/rest/webhook", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert fragment in (await resp.json())["error"]
    assert (await client.get("/conversations/x/tracker")).status == 404


async def test_oversized_body_is_refused(client):
    resp = await client.post("/webhooks/rest/webhook", data=b"{" + b" " * 70000 + b"}",
                             headers={"Content-Type": "application/json"})
    assert resp.status == 413


async def test_concurrent_messages_of_one_conversation_are_processed_in_turn(client):
    await asyncio.gather(*(chat(client, "busy", text) for text in ["hello", "how long is shipping", "thanks"]))
    events = (await tracker(client, "busy"))["events"]
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(events) + 1))
    # every user message is followed by its own answer before the next user message starts
    kinds = [e["event"] for e in events if e["event"] in ("user", "bot")]
    assert kinds.count("user") == 3
    for i, kind in enumerate(kinds):
        if kind == "user" and i + 1 < len(kinds):
            assert kinds[i + 1] == "bot"


async def test_redelivered_message_is_answered_once_and_the_retry_gets_the_same_answer(client):
    answers = []
    for _ in range(2):
        resp = await client.post("/webhooks/rest/webhook", json={"sender": "dup", "message": "运费多少钱"},
                                 headers={"X-Message-Id": "m-1"})
        assert resp.status == 200
        answers.append(await resp.json())
    assert answers[0] and answers[1] == answers[0]  # the client whose first answer was lost gets it now
    again = await client.post("/webhooks/rest/webhook",
                              json={"sender": "dup", "message": "运费多少钱", "metadata": {"message_id": "m-1"}})
    assert await again.json() == answers[0]
    events = (await tracker(client, "dup"))["events"]
    assert sum(e["event"] == "user" for e in events) == 1


async def test_rest_cannot_speak_into_another_channels_conversations(client):
    session = await (await client.post("/api/widget/session", json={})).json()
    widget_conversation = session["conversation_id"]
    assert widget_conversation.startswith("web:")
    for sender in (widget_conversation, "wechat:oAbC123", "messenger:2468", " WeChat:oAbC123"):
        resp = await client.post("/webhooks/rest/webhook", json={"sender": sender, "message": "hello"})
        assert resp.status == 403, sender
        assert "may only address its own conversations" in (await resp.json())["error"]
    assert (await client.get(f"/conversations/{widget_conversation}/tracker")).status == 404  # nothing stored
    assert (await client.get("/conversations/wechat:oAbC123/tracker")).status == 404
    assert await chat(client, "shop-backend:42", "hello")  # any other id is the caller's


async def test_a_customer_id_is_believed_only_with_its_identifier_hash(aiohttp_client, starter_model, tmp_path,
                                                                     monkeypatch):
    from bot.identity import identifier_hash

    monkeypatch.setenv("KEFU_IDENTITY_SECRET", "shop-and-kefu-share-this")
    settings = ServerSettings.for_project(ROOT, model_path=starter_model, db_path=tmp_path / "kefu.db")
    settings.redis_url = None
    client = await aiohttp_client(create_app(settings))

    async def ask(sender: str, metadata: dict) -> str:
        resp = await client.post("/webhooks/rest/webhook", json={
            "sender": sender, "message": "where is my order KF20240001", "metadata": metadata})
        assert resp.status == 200
        return "\n".join(r.get("text") or "" for r in await resp.json())

    signed = identifier_hash("shop-and-kefu-share-this", "C1001")
    assert "SF1402837561924" in await ask("signed", {"customer_id": "C1001", "identifier_hash": signed})
    forged = [{"customer_id": "C1001"}, {"customer_id": "C1001", "identifier_hash": "0" * 64},
              {"customer_id": "C1001", "identifier_hash": identifier_hash("a-guess", "C1001")},
              {"customer_id": "C1002", "identifier_hash": signed}]
    for i, metadata in enumerate(forged):
        answer = await ask(f"forged-{i}", metadata)
        assert "SF1402837561924" not in answer and "phone" in answer.lower(), answer
    users = [e for e in (await tracker(client, "signed"))["events"] if e["event"] == "user"]
    assert users[0]["metadata"]["customer_id"] == "C1001" and "identifier_hash" not in users[0]["metadata"]
    users = [e for e in (await tracker(client, "forged-0"))["events"] if e["event"] == "user"]
    assert "customer_id" not in users[0]["metadata"]


async def test_without_an_identity_secret_no_customer_id_is_believed(aiohttp_client, starter_model, tmp_path,
                                                                     monkeypatch):
    from bot.identity import identifier_hash

    monkeypatch.delenv("KEFU_IDENTITY_SECRET", raising=False)
    settings = ServerSettings.for_project(ROOT, model_path=starter_model, db_path=tmp_path / "kefu.db")
    settings.redis_url = None
    client = await aiohttp_client(create_app(settings))
    for secret in ("", "anything"):
        resp = await client.post("/webhooks/rest/webhook", json={
            "sender": f"nosecret-{secret}", "message": "where is my order KF20240001",
            "metadata": {"customer_id": "C1001", "identifier_hash": identifier_hash(secret, "C1001")}})
        assert "SF1402837561924" not in await resp.text()


async def test_auth_token_protects_the_api(token_client):
    assert (await token_client.post("/model/parse", json={"text": "hi"})).status == 401
    assert (await token_client.post("/model/parse?token=wrong", json={"text": "hi"})).status == 401
    assert (await token_client.post("/model/parse?token=s3cret", json={"text": "hi"})).status == 200
    await chat(token_client, "t1", "hello")
    assert (await token_client.get("/conversations/t1/tracker")).status == 401
    assert (await token_client.get("/conversations/t1/tracker?token=s3cret")).status == 200


async def test_health_and_metrics(client):
    assert (await (await client.get("/health")).json())["status"] == "ok"
    await chat(client, "m1", "hello")
    metrics = await (await client.get("/metrics")).text()  # no token configured: this machine only
    assert 'kefu_messages_total{channel="rest"} 1.0' in metrics


async def test_metrics_need_the_api_token_or_the_metrics_token(aiohttp_client, starter_model, tmp_path,
                                                               monkeypatch):
    monkeypatch.setenv("KEFU_METRICS_TOKEN", "scrape-me")
    settings = ServerSettings.for_project(ROOT, model_path=starter_model, db_path=tmp_path / "kefu.db",
                                          auth_token="s3cret")
    settings.redis_url = None
    client = await aiohttp_client(create_app(settings))
    assert (await client.get("/metrics")).status == 401
    assert (await client.get("/metrics?token=wrong")).status == 401
    assert (await client.get("/metrics", headers={"Authorization": "Bearer s3cret"})).status == 200
    resp = await client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})  # Prometheus' bearer
    assert resp.status == 200 and "kefu_turn_seconds" in await resp.text()
    # the metrics token opens nothing else
    assert (await client.post("/model/parse", json={"text": "hi"},
                              headers={"Authorization": "Bearer scrape-me"})).status == 401
    assert (await client.get("/health")).status == 200  # liveness stays open


async def test_access_log_never_shows_tokens(aiohttp_client, starter_model, tmp_path, caplog):
    """`kefu run` logs every request with bot.access_log.AccessLog: secrets in query strings are redacted."""
    import logging

    from bot.access_log import AccessLog

    settings = ServerSettings.for_project(ROOT, model_path=starter_model, db_path=tmp_path / "kefu.db",
                                          auth_token="s3cret-api-token")
    settings.redis_url = None
    server = TestServer(create_app(settings))
    await server.start_server(access_log_class=AccessLog)  # as `kefu run` serves
    client = await aiohttp_client(server)
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    assert (await client.post("/model/parse?token=s3cret-api-token", json={"text": "hi"})).status == 200
    await client.get("/webhooks/messenger?hub.mode=subscribe&hub.verify_token=verify-me-123&hub.challenge=42")
    await client.get("/metrics?lang=en&token=s3cret-api-token",
                     headers={"Referer": "http://127.0.0.1/console?token=s3cret-api-token&x=1"})
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert len(lines) == 3, lines
    logged = "\n".join(lines)
    assert "s3cret-api-token" not in logged and "verify-me-123" not in logged
    assert "POST /model/parse?token=[redacted] HTTP/1.1" in logged
    assert "hub.verify_token=[redacted]&hub.challenge=42" in logged and "lang=en&token=[redacted]" in logged
    assert "/console?token=[redacted]&x=1" in logged  # the Referer too


async def test_button_payload_keeps_the_conversation_language(client):
    await chat(client, "lang-1", "hello there")
    replies = await chat(client, "lang-1", "/greet")
    assert replies and not any("\u4e00" <= ch <= "\u9fff" for ch in replies[0]["text"])
