"""Hostile input gets 400 with a JSON `{"error": …}` (never 500) and leaves nothing stored (issue 14, finding 7).

Real app, real stores, real HTTP: deeply nested JSON on every JSON endpoint and on the widget socket, lone
surrogates, `NaN`/`Infinity`, non-UTF-8 bytes in headers (sent over a raw socket: clients refuse to), and
malformed multipart uploads.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from bot.app_keys import STORES
from bot.server import ServerSettings, create_app
from handoff.app_keys import HANDOFF

ROOT = Path(__file__).resolve().parent.parent
DEEP = "[" * 5000 + "]" * 5000
DEEP_OBJECT = '{"a":' * 2000 + "1" + "}" * 2000


@pytest.fixture
async def client(aiohttp_client, starter_model, tmp_path):
    settings = ServerSettings.for_project(ROOT, model_path=starter_model, db_path=tmp_path / "kefu.db")
    settings.redis_url = None
    settings.endpoints.channels = {"widget": {"upload_dir": tmp_path / "uploads"}}
    return await aiohttp_client(create_app(settings))


def origin(client) -> str:
    return f"http://{client.host}:{client.port}"


async def refused(resp, status: int = 400) -> str:
    """The error message of a refusal with `status` and a JSON `{"error": …}` body."""
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert isinstance(body, dict) and isinstance(body["error"], str), body
    return body["error"]


async def nothing_stored(client) -> None:
    assert await client.app[STORES].trackers.conversations() == []


async def test_deeply_nested_json_is_400_on_every_json_endpoint(client):
    headers = {"Content-Type": "application/json", "Origin": origin(client)}
    big = (DEEP, DEEP_OBJECT, '{"sender": "s", "message": "hi", "metadata": ' + DEEP + "}")
    small = ("[" * 400 + "]" * 400, '{"token": ' + "[" * 100 + "]" * 100 + "}")  # within the session's 1 KiB
    paths = {"/webhooks/rest/webhook": big + small, "/model/parse": big + small, "/api/agent/login": big + small,
             "/api/widget/session": small}
    for path, bodies in paths.items():
        for body in bodies:
            message = await refused(await client.post(path, data=body, headers=headers))
            assert "nested" in message, (path, message)
    await nothing_stored(client)


async def test_lone_surrogate_and_non_finite_numbers_are_refused_at_the_door(client):
    bodies = ['{"sender": "s1", "message": "\\ud800"}', '{"sender": "\\udfff", "message": "hi"}',
              '{"sender": "s1", "message": "hi", "metadata": {"price": NaN}}',
              '{"sender": "s1", "message": "hi", "metadata": {"x": [Infinity]}}',
              '{"sender": "s1", "message": "hi", "metadata": {"x": -Infinity}}',
              '{"sender": "s1", "message": "hi", "metadata": {"x": 1e999}}']
    for body in bodies:
        message = await refused(await client.post("/webhooks/rest/webhook", data=body))
        assert "surrogate" in message or "finite" in message, message
    assert "surrogate" in await refused(await client.post("/model/parse", data='{"text": "a\\udc00b"}'))
    await nothing_stored(client)
    # a real pair (an emoji written as escapes) is fine
    resp = await client.post("/webhooks/rest/webhook", data='{"sender": "s2", "message": "hi \\ud83d\\ude00"}')
    assert resp.status == 200, await resp.text()


async def raw_request(client, head: bytes, body: bytes = b"") -> tuple[int, dict]:
    """Send bytes no HTTP client library would send; the status and JSON body of the answer."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(head + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n"
                     + body)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    status = int(answer.split(b" ", 2)[1])
    return status, json.loads(answer.split(b"\r\n\r\n", 1)[1] or b"null")


async def test_a_message_id_that_is_not_a_short_string_is_400(client):
    for message_id in ([1, 2], {"a": 1}, 7, "", "x" * 201):
        body = {"sender": "s1", "message": "hi", "metadata": {"message_id": message_id}}
        assert "message id" in await refused(await client.post("/webhooks/rest/webhook", json=body))
    assert "message id" in await refused(await client.post(
        "/webhooks/rest/webhook", json={"sender": "s1", "message": "hi"}, headers={"X-Message-Id": "x" * 201}))
    await nothing_stored(client)


async def test_non_utf8_bytes_in_auth_headers_are_400(client):
    host = f"Host: {client.host}:{client.port}".encode()
    requests = [
        b"GET /conversations/x/tracker HTTP/1.1\r\n" + host + b"\r\nAuthorization: Bearer \xff\xfe",
        b"GET /api/agent/me HTTP/1.1\r\n" + host + b"\r\nCookie: kefu_session=\xff\xfe",
        b"GET /api/agent/me HTTP/1.1\r\n" + host + b"\r\nAuthorization: Bearer \xc3\x28",
        b"GET /api/widget/history HTTP/1.1\r\n" + host + b"\r\nAuthorization: Bearer \x80abc",
        b"POST /webhooks/rest/webhook HTTP/1.1\r\n" + host + b"\r\nX-Hub-Signature-256: sha256=\xff",
    ]
    for head in requests:
        status, body = await raw_request(client, head, b"{}")
        assert status == 400, (head, status, body)
        assert "UTF-8" in body["error"], body


async def widget_token(client) -> str:
    resp = await client.post("/api/widget/session", json={}, headers={"Origin": origin(client)})
    assert resp.status == 200
    return (await resp.json())["token"]


def multipart(parts: list[tuple[str, bytes]], boundary: str = "b0undary") -> tuple[bytes, str]:
    """A multipart body from raw part headers and contents (aiohttp's FormData would clean the names)."""
    body = b"".join(f"--{boundary}\r\n{head}\r\n\r\n".encode() + content + b"\r\n" for head, content in parts)
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


BOUNDARY = "multipart/form-data; boundary=b0undary"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


async def test_malformed_multipart_uploads_are_4xx_not_500(client):
    auth = {"Authorization": f"Bearer {await widget_token(client)}"}
    file_head = 'Content-Disposition: form-data; name="file"; filename="{}"\r\nContent-Type: image/png'
    bad = [
        multipart([(file_head.format("a\x00b.png"), PNG)]),
        multipart([(file_head.format("x" * 10_000 + ".png"), PNG)]),
        multipart([('Content-Disposition: form-data; name="junk"', b"x")] * 5000 + [(file_head.format("a.png"), PNG)]),
        (b"--b0undary\r\n" * 5000, BOUNDARY),
        (b"no boundary at all", "multipart/form-data"),
        (b'--b0undary\r\nContent-Disposition: form-data; name="file"\r\n\r\n', BOUNDARY),  # cut short
    ]
    for body, content_type in bad:
        resp = await client.post("/api/widget/upload", data=body, headers={**auth, "Content-Type": content_type})
        assert 400 <= resp.status < 500, (body[:200], resp.status, await resp.text())
        assert isinstance((await resp.json())["error"], str)
    assert await client.app[STORES].kv.scan("widget:upload:") == []
    # the console's login form takes only what its page sends
    body, content_type = multipart([(file_head.format("a\x00b.png"), PNG)])
    resp = await client.post("/console/login", data=body, headers={"Content-Type": content_type,
                                                                   "Origin": origin(client)})
    assert resp.status == 415 and "x-www-form-urlencoded" in (await resp.json())["error"]
    resp = await client.post("/console/login", data=b"username=%FF%FE&password=%ZZ", allow_redirects=False,
                             headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": origin(client)})
    assert resp.status in (400, 401), await resp.text()


async def test_widget_socket_answers_deep_and_surrogate_frames_with_errors_and_stays_usable(client):
    token = await widget_token(client)
    ws = await client.ws_connect("/api/widget/ws", origin=origin(client))
    await ws.send_json({"type": "hello", "token": token, "last_seq": 0})
    while (await ws.receive_json(timeout=10))["type"] != "ready":
        pass
    for raw in ('{"type": "ping", "x": ' + "[" * 3000 + "]" * 3000 + "}",
                '{"type": "message", "client_msg_id": "abcdefgh1", "text": "\\ud800"}',
                '{"type": "read", "seq": NaN}'):
        await ws.send_str(raw)
        frame = await ws.receive_json(timeout=5)
        assert frame["type"] == "error" and frame["code"] == "bad_frame", frame
    await ws.send_json({"type": "ping"})
    assert await ws.receive_json(timeout=5) == {"type": "pong"}
    await ws.close()


async def test_console_payloads_with_deep_json_are_400(client):
    await client.app[HANDOFF].agents.add("li", "password-1")
    login = await client.post("/api/agent/login", json={"username": "li", "password": "password-1"})
    headers = {"Authorization": f"Bearer {(await login.json())['token']}", "Content-Type": "application/json"}
    message = await refused(await client.put("/api/agent/status", data=DEEP, headers=headers))
    assert "nested" in message


async def test_a_button_payload_with_deep_json_is_read_as_text_not_a_crash(client):
    text = '/greet{"a": ' + "[" * 2400 + "]" * 2400 + "}"
    resp = await client.post("/webhooks/rest/webhook", json={"sender": "p1", "message": text})
    assert resp.status == 200, await resp.text()


def test_strict_json_says_what_is_wrong():
    from bot import strict_json

    assert strict_json.loads(b'{"a": [1, 2.5, "\\ud83d\\ude00"]}') == {"a": [1, 2.5, "\U0001f600"]}
    assert strict_json.loads("[" * 32 + "]" * 32) is not None  # 32 levels are fine, 33 are not
    cases = {"[" * 33 + "]" * 33: "nested deeper than 32", "[" * 100_000: "nested deeper than 32",
             '{"\\udc00": 1}': "lone surrogate (\\udc00)", "[NaN]": "NaN is not JSON", "1e400": "finite",
             "-Infinity": "-Infinity is not JSON", "{nope": "Expecting property name", b"\xff": "not UTF-8"}
    for text, reason in cases.items():
        with pytest.raises(strict_json.JSONInputError, match=re.escape(reason)):
            strict_json.loads(text)
