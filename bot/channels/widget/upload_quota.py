"""How many files and bytes each conversation keeps in uploads, so one client cannot fill the disk.

The rate limit (uploads per minute) slows a client down; this caps what it can keep. The usage is one small
document per conversation, changed by compare-and-set, so parallel uploads (on any worker) cannot both slip
under the cap: a file is kept only if adding it to the usage succeeded. Retention gives the room back.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.http import HTTPError
from bot.stores import KeyValue

KEY_PREFIX = "widget:upload-usage:"  # not under "widget:upload:", where the files' records are
CAS_ATTEMPTS = 50


@dataclass(frozen=True)
class Usage:
    files: int = 0
    bytes: int = 0


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB" if size >= 1024 * 1024 else f"{size} bytes"


class UploadQuota:
    def __init__(self, kv: KeyValue, max_files: int, max_bytes: int) -> None:
        self.kv = kv
        self.max_files = max_files
        self.max_bytes = max_bytes

    async def usage(self, conversation_id: str) -> Usage:
        doc = await self.kv.get(KEY_PREFIX + conversation_id) or {}
        return Usage(int(doc.get("files", 0)), int(doc.get("bytes", 0)))

    async def room(self, conversation_id: str) -> int:
        """Bytes this conversation may still upload; 429 / 413 when it has no room for another file."""
        used = await self.usage(conversation_id)
        if used.files >= self.max_files:
            raise self.files_error()
        if used.bytes >= self.max_bytes:
            raise self.bytes_error()
        return self.max_bytes - used.bytes

    def files_error(self) -> HTTPError:
        return HTTPError(429, f"upload quota reached: a conversation can keep at most {self.max_files} files")

    def bytes_error(self) -> HTTPError:
        return HTTPError(413, f"upload quota reached: a conversation can keep at most {_mb(self.max_bytes)} of files")

    async def take(self, conversation_id: str, size: int) -> None:
        """Count one more file of `size` bytes, or raise the quota's error if it no longer fits."""
        await self._change(conversation_id, 1, size, check=True)

    async def give_back(self, conversation_id: str, size: int) -> None:
        """A file was removed (retention): its room is free again."""
        await self._change(conversation_id, -1, -size, check=False)

    async def _change(self, conversation_id: str, files: int, size: int, check: bool) -> None:
        key = KEY_PREFIX + conversation_id
        for _ in range(CAS_ATTEMPTS):
            current = await self.kv.get(key)
            used = Usage(int((current or {}).get("files", 0)), int((current or {}).get("bytes", 0)))
            new = Usage(max(0, used.files + files), max(0, used.bytes + size))
            if check and new.files > self.max_files:
                raise self.files_error()
            if check and new.bytes > self.max_bytes:
                raise self.bytes_error()
            doc = {"files": new.files, "bytes": new.bytes} if new.files else None
            if await self.kv.cas(key, current, doc):
                return
        raise HTTPError(503, "uploads are busy; try again")
