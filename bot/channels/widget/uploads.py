"""Files a shopper sends (images, PDF): size and type checked, stored outside the web root, served as downloads.

The type is decided by the file's first bytes, not by its name or the browser's word, and it must agree with
what the browser declared; anything else is 415, anything too big 413, and neither leaves a file or a record
behind (S10). Each conversation keeps at most so many files and bytes (upload_quota.py); retention removes
old ones (upload_retention.py). Files are served only by their unguessable id, with `Content-Disposition:
attachment` and `nosniff`, so an uploaded file can never run as a page on our origin.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from bot.channels.widget.upload_quota import UploadQuota
from bot.http import HTTPError
from bot.stores import KeyValue

KEY_PREFIX = "widget:upload:"
ID_PATTERN = re.compile(r"^att_[A-Za-z0-9_-]{16,64}$")
CHUNK = 64 * 1024
MULTIPART_OVERHEAD = 16 * 1024
MAX_NAME_CHARS = 120  # shown; longer names are cut
MAX_FILENAME_CHARS = 1024  # sent; longer is not a file name
MAX_PARTS = 10  # parts before the `file` one (a browser sends one)
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "application/x-pdf": "application/pdf"}


def sniff(head: bytes) -> str | None:
    """The MIME type of a file from its magic bytes, for the types the bubble accepts."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def safe_name(name: str | None) -> str:
    """A display name: no path, no control characters, not too long. Browsers send UTF-8 names, some clients
    percent-encode them: both end up as the same readable name."""
    name = name or ""
    if _PERCENT.search(name):
        name = unquote(name)
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip().lstrip(".")
    return base[:MAX_NAME_CHARS] or "file"


@dataclass(frozen=True)
class Attachment:
    id: str
    conversation_id: str
    name: str
    mime: str
    size: int

    @property
    def url(self) -> str:
        return f"/api/widget/files/{self.id}"

    def public(self) -> dict[str, Any]:
        """What the shopper, the console and the stored user event see (no conversation, no path)."""
        return {"id": self.id, "url": self.url, "name": self.name, "mime": self.mime, "size": self.size}


class UploadStore:
    """Files in `directory` named by id only; their metadata in the key/value store."""

    def __init__(self, directory: Path, kv: KeyValue, max_bytes: int, types: list[str], quota: UploadQuota) -> None:
        self.directory = directory
        self.kv = kv
        self.max_bytes = max_bytes
        self.types = set(types)
        self.quota = quota

    def path(self, attachment_id: str) -> Path:
        return self.directory / attachment_id

    async def get(self, attachment_id: str) -> Attachment | None:
        if not ID_PATTERN.match(attachment_id):
            return None
        doc = await self.kv.get(KEY_PREFIX + attachment_id)
        if not doc:
            return None
        return Attachment(attachment_id, doc["conversation_id"], doc["name"], doc["mime"], int(doc["size"]))

    async def receive(self, request: web.Request, conversation_id: str) -> Attachment:
        """Read the `file` part of a multipart upload; all checks pass (the conversation's quota too) or nothing
        is kept."""
        if request.content_length is not None and request.content_length > self.max_bytes + MULTIPART_OVERHEAD:
            raise HTTPError(413, f"file too large (limit {self.max_bytes} bytes)")
        room = await self.quota.room(conversation_id)
        part = await self._file_part(request)
        declared = part.headers.get("Content-Type", "").split(";")[0].strip().lower()
        declared = ALIASES.get(declared, declared)
        if declared not in self.types:
            raise HTTPError(415, f"only {', '.join(sorted(self.types))} files can be sent")
        attachment_id = "att_" + secrets.token_urlsafe(18)
        size = await self._write(part, attachment_id, declared, room)
        try:
            await self.quota.take(conversation_id, size)  # a parallel upload may have used the room meanwhile
        except HTTPError:
            await asyncio.get_running_loop().run_in_executor(None, self.path(attachment_id).unlink)
            raise
        attachment = Attachment(attachment_id, conversation_id, safe_name(part.filename), declared, size)
        await self.kv.set(KEY_PREFIX + attachment_id, {"conversation_id": conversation_id, "name": attachment.name,
                                                       "mime": declared, "size": size, "created_at": time.time()})
        return attachment

    async def keep_bytes(self, conversation_id: str, name: str | None, data: bytes) -> Attachment:
        """Keep a file another channel received whole (an e-mail attachment) under the same rules as an upload:
        its type from its first bytes, the size limit and the conversation's quota (HTTPError 413 / 415 / 429)."""
        if len(data) > self.max_bytes:
            raise HTTPError(413, f"file too large (limit {self.max_bytes} bytes)")
        mime = sniff(data[:16])
        if mime is None or mime not in self.types:
            raise HTTPError(415, f"only {', '.join(sorted(self.types))} files can be sent")
        if not data:
            raise HTTPError(400, "the file is empty")
        await self.quota.take(conversation_id, len(data))
        attachment_id = "att_" + secrets.token_urlsafe(18)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._write_whole, attachment_id, data)
        attachment = Attachment(attachment_id, conversation_id, safe_name(name), mime, len(data))
        await self.kv.set(KEY_PREFIX + attachment_id, {"conversation_id": conversation_id, "name": attachment.name,
                                                       "mime": mime, "size": len(data), "created_at": time.time()})
        return attachment

    def _write_whole(self, attachment_id: str, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f".{attachment_id}.part"
        tmp.write_bytes(data)
        os.replace(tmp, self.path(attachment_id))

    async def _file_part(self, request: web.Request) -> BodyPartReader:
        """The `file` part, among at most MAX_PARTS; a body that is not such multipart is 400, never 500 (aiohttp's
        parser raises its own errors for a NUL in a part header, a cut-short body, a missing boundary...)."""
        try:
            reader = await request.multipart()
            part = await reader.next()
            for _ in range(MAX_PARTS):
                if part is None or (isinstance(part, BodyPartReader) and part.name == "file"):
                    break
                await part.release()
                part = await reader.next()
            else:
                raise HTTPError(400, f"at most {MAX_PARTS} parts in an upload")
            filename = part.filename if isinstance(part, BodyPartReader) else None
        except (AssertionError, ValueError, KeyError, HttpProcessingError):
            raise HTTPError(400, "the upload is not valid multipart/form-data") from None
        if not isinstance(part, BodyPartReader) or not filename:
            raise HTTPError(400, "send the file as multipart/form-data in a part named 'file'")
        if len(filename) > MAX_FILENAME_CHARS:
            raise HTTPError(400, f"file names are limited to {MAX_FILENAME_CHARS} characters")
        return part

    async def _write(self, part: BodyPartReader, attachment_id: str, declared: str, room: int) -> int:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, lambda: self.directory.mkdir(parents=True, exist_ok=True))
        tmp = self.directory / f".{attachment_id}.part"
        size = 0
        head = b""
        ok = False
        handle = await loop.run_in_executor(None, tmp.open, "wb")
        try:
            while chunk := await _chunk(part):
                size += len(chunk)
                if size > self.max_bytes:
                    raise HTTPError(413, f"file too large (limit {self.max_bytes} bytes)")
                if size > room:
                    raise self.quota.bytes_error()
                if len(head) < 16:
                    head = (head + chunk)[:16]
                    if len(head) >= 12 and sniff(head) != declared:
                        raise HTTPError(415, "the file's content is not what its type says")
                await loop.run_in_executor(None, handle.write, chunk)
            if size == 0:
                raise HTTPError(400, "the file is empty")
            if sniff(head) != declared:
                raise HTTPError(415, "the file's content is not what its type says")
            ok = True
        finally:
            await loop.run_in_executor(None, handle.close)
            if ok:
                await loop.run_in_executor(None, os.replace, tmp, self.path(attachment_id))
            else:
                with contextlib.suppress(FileNotFoundError):
                    await loop.run_in_executor(None, tmp.unlink)
        return size


async def _chunk(part: BodyPartReader) -> bytes:
    try:
        return await part.read_chunk(CHUNK)
    except (AssertionError, ValueError, HttpProcessingError):
        raise HTTPError(400, "the upload is not valid multipart/form-data") from None


def download_response(store: UploadStore, attachment: Attachment) -> web.FileResponse:
    filename = quote(attachment.name, safe="")
    ascii_name = attachment.name.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return web.FileResponse(store.path(attachment.id), headers={
        "Content-Type": attachment.mime,
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{filename}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, max-age=86400",
        "Cross-Origin-Resource-Policy": "cross-origin",
    })
