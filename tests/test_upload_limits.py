"""What one conversation may keep in uploads, and for how long (issue 14, finding 8): a client that sends file
after file is stopped with a clear 429 / 413, and old uploads are removed when kefu starts (and hourly)."""

from __future__ import annotations

import asyncio
import os
import time

from bot.app_keys import STORES
from tests.test_widget_ws import PNG, new_session, origin, upload_form, widget_app


async def upload(client, token: str, content: bytes = PNG, name: str = "a.png"):
    return await client.post("/api/widget/upload", data=upload_form(content, name, "image/png"),
                             headers={"Authorization": f"Bearer {token}", "Origin": origin(client)})


async def test_a_conversation_keeps_at_most_so_many_files_and_bytes(aiohttp_client, starter_model, tmp_path):
    client = await aiohttp_client(widget_app(starter_model, tmp_path, max_conversation_uploads=2,
                                             max_conversation_upload_bytes=4096))
    one, other = (await new_session(client))["token"], (await new_session(client))["token"]
    assert (await upload(client, one)).status == 201
    assert (await upload(client, one)).status == 201
    resp = await upload(client, one)
    assert resp.status == 429
    assert (await resp.json())["error"] == "upload quota reached: a conversation can keep at most 2 files"
    # another conversation has its own quota; bytes count too: 3,000 + 3,000 > 4,096
    big = PNG + b"\0" * (3000 - len(PNG))
    assert (await upload(client, other, big)).status == 201
    resp = await upload(client, other, big)
    assert resp.status == 413
    assert (await resp.json())["error"] == "upload quota reached: a conversation can keep at most 4096 bytes of files"
    records = await client.app[STORES].kv.scan("widget:upload:")
    assert len(records) == 3  # nothing kept of the refused ones, file or record
    assert len(list((tmp_path / "uploads").iterdir())) == 3


async def test_parallel_uploads_cannot_slip_past_the_quota(aiohttp_client, starter_model, tmp_path):
    client = await aiohttp_client(widget_app(starter_model, tmp_path, max_conversation_uploads=3))
    token = (await new_session(client))["token"]
    statuses = sorted([r.status for r in await asyncio.gather(*(upload(client, token) for _ in range(5)))])
    assert statuses == [201, 201, 201, 429, 429]
    assert len(list((tmp_path / "uploads").iterdir())) == 3


async def test_old_uploads_are_removed_at_start_up_and_give_their_room_back(aiohttp_client, starter_model,
                                                                             tmp_path):
    app = widget_app(starter_model, tmp_path, max_conversation_uploads=2, upload_retention_days=30)
    client = await aiohttp_client(app)
    token = (await new_session(client))["token"]
    old, new = [await (await upload(client, token)).json() for _ in range(2)]
    assert (await upload(client, token)).status == 429
    # the first file is 31 days old (its record and its file), and a killed worker left a half-written file
    kv, uploads = client.app[STORES].kv, tmp_path / "uploads"
    month_ago = time.time() - 31 * 86400
    record = await kv.get("widget:upload:" + old["id"])
    await kv.set("widget:upload:" + old["id"], {**record, "created_at": month_ago})
    stray = uploads / ".att_abcdefghijklmnopqrstuv.part"
    stray.write_bytes(b"half")
    not_ours = uploads / "notes.txt"
    not_ours.write_text("an operator's file")
    for path in (uploads / old["id"], stray, not_ours):
        os.utime(path, (month_ago, month_ago))
    await client.close()

    client = await aiohttp_client(widget_app(starter_model, tmp_path, max_conversation_uploads=2,
                                             upload_retention_days=30))  # restart: the sweep runs at start-up
    deadline = time.monotonic() + 10
    while ((uploads / old["id"]).exists() or stray.exists()) and time.monotonic() < deadline:  # one sweep, two files
        await asyncio.sleep(0.05)
    assert sorted(p.name for p in uploads.iterdir()) == sorted([new["id"], "notes.txt"])
    assert (await client.get(old["url"])).status == 404
    assert (await client.get(new["url"])).status == 200
    token = (await new_session(client, token))["token"]
    assert (await upload(client, token)).status == 201  # the old file's room is free again

