"""Embedded stores: one SQLite file (WAL) + in-process locks and event bus. `kefu run` needs nothing else.

Every sqlite call runs on one dedicated worker thread that owns the only connection, so the event loop never
blocks on disk and the calls of this process are naturally serialised. Multi-statement writes still run in
`BEGIN IMMEDIATE` transactions, so a second process on the same file (`kefu shell` next to `kefu run`) cannot
interleave with them.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from bot.stores.base import (
    Event,
    LocalEventBus,
    LocalLocks,
    Stores,
    check_page,
    document,
    dumps,
    event_json,
    first_channel,
    prefix_upper_bound,
    prepare_events,
)
from bot.stores.buckets import LocalBuckets

T = TypeVar("T")

SCHEMA_VERSION = 2  # 2: counters.expires_at
SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    conversation_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (conversation_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS conversations (
    conversation_id TEXT PRIMARY KEY,
    channel TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    last_seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS conversations_by_activity ON conversations (updated_at DESC, conversation_id DESC);
CREATE TABLE IF NOT EXISTS conversation_meta (
    conversation_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (conversation_id, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS message_ids (key TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS message_ids_by_expiry ON message_ids (expires_at);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS zsets (
    name TEXT NOT NULL,
    member TEXT NOT NULL,
    score REAL NOT NULL,
    PRIMARY KEY (name, member)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS zsets_by_score ON zsets (name, score, member);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL, expires_at REAL) WITHOUT ROWID;
"""


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a file made by an older kefu up to SCHEMA (CREATE IF NOT EXISTS adds no columns)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(counters)")}
    if "expires_at" not in columns:
        try:
            conn.execute("ALTER TABLE counters ADD COLUMN expires_at REAL")
        except sqlite3.OperationalError as exc:  # another process added it meanwhile
            if "duplicate column" not in str(exc):
                raise


class SqliteDB:
    """The file, its one connection and the one thread allowed to use it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kefu-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        try:
            # Opened eagerly (a few ms, once at start-up) so a bad path fails `kefu run` at once, clearly.
            self._executor.submit(self._open).result()
        except BaseException:
            self._executor.shutdown(wait=False)
            raise

    def _open(self) -> None:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL, deliberately: in WAL mode a commit survives the process being killed (kill -9, OOM); only
            # an OS crash or power loss can lose the last commits (never corrupting the file), and FULL would
            # fsync on every message. README, "Backups and data deletion".
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA secure_delete=ON")  # deleted rows are overwritten, not left in free space
            conn.executescript(SCHEMA)
            _migrate(conn)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise RuntimeError(f"cannot open the SQLite store at {self.path}: {exc}") from exc
        self._conn = conn

    @property
    def conn(self) -> sqlite3.Connection:
        assert self._conn is not None
        return self._conn

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(*args) on the sqlite thread."""
        if self._closed:
            raise RuntimeError(f"the SQLite store at {self.path} is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error); call on the sqlite thread only."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._conn is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._conn.close)
        self._executor.shutdown(wait=False)


def _with_seq(body: str, seq: int) -> str:
    """Put `seq` first into an event's JSON text (the Redis backend does the same in its Lua script)."""
    return f'{{"seq":{seq},{body[1:]}'


class SqliteTrackerStore:
    """Conversations as rows of JSON events keyed by (conversation_id, seq)."""

    def __init__(self, db: SqliteDB, bus: LocalEventBus) -> None:
        self._db = db
        self._bus = bus
        self._local = LocalLocks()
        self._next_purge = 0.0

    async def append(self, conversation_id: str, events: list[Event]) -> list[Event]:
        now = time.time()
        prepared = prepare_events(events, now)
        if not prepared:
            return []
        loop = asyncio.get_running_loop()
        return await self._db.run(self._append, conversation_id, prepared, now, loop)

    def _append(
        self, cid: str, prepared: list[Event], now: float, loop: asyncio.AbstractEventLoop
    ) -> list[Event]:
        bodies = [event_json(e) for e in prepared]  # serialisation errors surface before anything is written
        with self._db.transaction() as conn:
            (last,) = conn.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM events WHERE conversation_id = ?", (cid,)
            ).fetchone()
            rows = [(cid, last + i, _with_seq(body, last + i)) for i, body in enumerate(bodies, start=1)]
            conn.executemany("INSERT INTO events (conversation_id, seq, data) VALUES (?, ?, ?)", rows)
            conn.execute(
                "INSERT INTO conversations (conversation_id, channel, created_at, updated_at, last_seq)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (conversation_id) DO UPDATE SET"
                " channel = COALESCE(conversations.channel, excluded.channel),"
                " updated_at = excluded.updated_at, last_seq = excluded.last_seq",
                (cid, first_channel(prepared), now, now, last + len(rows)),
            )
        # Scheduled from this (serial) thread right after COMMIT, so subscribers see events in seq order.
        # Their own copies: the caller may go on to change the list it gets back.
        loop.call_soon_threadsafe(self._publish, cid, [json.loads(data) for _, _, data in rows])
        return [json.loads(data) for _, _, data in rows]

    def _publish(self, cid: str, stored: list[Event]) -> None:
        for event in stored:
            self._bus.publish_nowait(cid, event)

    async def events(self, conversation_id: str, after_seq: int = 0, limit: int | None = None) -> list[Event]:
        check_page(limit)
        if limit == 0:
            return []
        sql_limit = -1 if limit is None else limit
        return await self._db.run(self._events, conversation_id, max(after_seq, 0), sql_limit)

    def _events(self, cid: str, after_seq: int, limit: int) -> list[Event]:
        rows = self._db.conn.execute(
            "SELECT data FROM events WHERE conversation_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (cid, after_seq, limit),
        ).fetchall()
        return [json.loads(data) for (data,) in rows]

    async def exists(self, conversation_id: str) -> bool:
        return await self._db.run(self._exists, conversation_id)

    def _exists(self, cid: str) -> bool:
        sql = "SELECT 1 FROM conversations WHERE conversation_id = ?"
        return self._db.conn.execute(sql, (cid,)).fetchone() is not None

    async def conversations(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        check_page(limit, offset)
        return await self._db.run(self._conversations, limit, offset)

    def _conversations(self, limit: int, offset: int) -> list[dict[str, Any]]:
        cursor = self._db.conn.execute(
            "SELECT conversation_id, channel, created_at, updated_at, last_seq FROM conversations"
            " ORDER BY updated_at DESC, conversation_id DESC LIMIT ? OFFSET ?",
            (limit, offset),
        )
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    async def set_meta(self, conversation_id: str, **fields: Any) -> None:
        if fields:
            rows = [(conversation_id, key, dumps(value)) for key, value in fields.items()]
            await self._db.run(self._set_meta, rows)

    def _set_meta(self, rows: list[tuple[str, str, str]]) -> None:
        with self._db.transaction() as conn:
            conn.executemany(
                "INSERT INTO conversation_meta (conversation_id, key, value) VALUES (?, ?, ?)"
                " ON CONFLICT (conversation_id, key) DO UPDATE SET value = excluded.value",
                rows,
            )

    async def get_meta(self, conversation_id: str) -> dict[str, Any]:
        return await self._db.run(self._get_meta, conversation_id)

    def _get_meta(self, cid: str) -> dict[str, Any]:
        sql = "SELECT key, value FROM conversation_meta WHERE conversation_id = ?"
        return {key: json.loads(value) for key, value in self._db.conn.execute(sql, (cid,))}

    async def claim_message_id(self, key: str, ttl_s: float = 86400) -> bool:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        return await self._db.run(self._claim, key, time.time(), ttl_s)

    def _claim(self, key: str, now: float, ttl_s: float) -> bool:
        conn = self._db.conn
        if now >= self._next_purge:
            conn.execute("DELETE FROM message_ids WHERE expires_at <= ?", (now,))
            self._next_purge = now + 60
        # One statement, so atomic: inserts a new key, or revives an expired one; a live key changes nothing.
        cursor = conn.execute(
            "INSERT INTO message_ids (key, expires_at) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET"
            " expires_at = excluded.expires_at WHERE message_ids.expires_at <= ?",
            (key, now + ttl_s, now),
        )
        return cursor.rowcount == 1

    async def erase(self, conversation_id: str) -> int:
        return await self._db.run(self._erase, conversation_id)

    def _erase(self, cid: str) -> int:
        with self._db.transaction() as conn:
            count = conn.execute("DELETE FROM events WHERE conversation_id = ?", (cid,)).rowcount
            conn.execute("DELETE FROM conversations WHERE conversation_id = ?", (cid,))
            conn.execute("DELETE FROM conversation_meta WHERE conversation_id = ?", (cid,))
        # The log still holds the pages as they were before: copy the new ones home and empty it (a reader in
        # another process can hold this up; its next checkpoint finishes the job).
        self._db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return count

    async def forget_message_ids(self, prefix: str) -> int:
        return await self._db.run(self._forget_message_ids, prefix)

    def _forget_message_ids(self, prefix: str) -> int:
        upper = prefix_upper_bound(prefix)
        if upper is None:
            return self._db.conn.execute("DELETE FROM message_ids WHERE key >= ?", (prefix,)).rowcount
        sql = "DELETE FROM message_ids WHERE key >= ? AND key < ?"
        return self._db.conn.execute(sql, (prefix, upper)).rowcount

    def lock(self, conversation_id: str, timeout_s: float = 30.0) -> AbstractAsyncContextManager[None]:
        """In-process only: the embedded mode runs one worker."""
        return self._local.hold(conversation_id, timeout_s)

    async def close(self) -> None:
        await self._db.close()


class SqliteKeyValue:
    """JSON documents in `kv`, sorted sets in `zsets`, counters in `counters`; token buckets in memory."""

    def __init__(self, db: SqliteDB) -> None:
        self._db = db
        self._next_purge = 0.0  # expired counters are removed at most once a minute
        self._buckets = LocalBuckets()

    async def get(self, key: str) -> dict[str, Any] | None:
        return await self._db.run(self._get, key)

    def _get(self, key: str) -> dict[str, Any] | None:
        row = self._db.conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    async def set(self, key: str, value: dict[str, Any]) -> None:
        await self._db.run(self._set, key, document(value))

    def _set(self, key: str, text: str) -> None:
        self._db.conn.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, text))

    async def delete(self, key: str) -> None:
        await self._db.run(self._delete, key)

    def _delete(self, key: str) -> None:
        self._db.conn.execute("DELETE FROM kv WHERE key = ?", (key,))

    async def scan(self, prefix: str) -> list[tuple[str, dict[str, Any]]]:
        return await self._db.run(self._scan, prefix)

    def _scan(self, prefix: str) -> list[tuple[str, dict[str, Any]]]:
        upper = prefix_upper_bound(prefix)
        if upper is None:
            rows = self._db.conn.execute("SELECT key, value FROM kv WHERE key >= ? ORDER BY key", (prefix,))
        else:
            sql = "SELECT key, value FROM kv WHERE key >= ? AND key < ? ORDER BY key"
            rows = self._db.conn.execute(sql, (prefix, upper))
        return [(key, json.loads(value)) for key, value in rows]

    async def cas(self, key: str, expected: dict[str, Any] | None, new: dict[str, Any] | None) -> bool:
        expected_text = None if expected is None else document(expected)
        new_text = None if new is None else document(new)
        return await self._db.run(self._cas, key, expected_text, new_text)

    def _cas(self, key: str, expected: str | None, new: str | None) -> bool:
        with self._db.transaction() as conn:
            row = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
            if (row[0] if row else None) != expected:
                return False
            if new is None:
                conn.execute("DELETE FROM kv WHERE key = ?", (key,))
            else:
                conn.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, new))
            return True

    async def incr(self, counter: str, ttl_s: float | None = None) -> int:
        if ttl_s is not None and ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        return await self._db.run(self._incr, counter, time.time(), ttl_s)

    def _incr(self, counter: str, now: float, ttl_s: float | None) -> int:
        expires_at = None if ttl_s is None else now + ttl_s
        # One statement in a write transaction: another process on the file (`kefu shell`) waits its turn.
        # An expired counter starts again at 1 with a new window; a live one keeps its window.
        with self._db.transaction() as conn:
            if ttl_s is not None and now >= self._next_purge:
                conn.execute("DELETE FROM counters WHERE expires_at <= ?", (now,))
                self._next_purge = now + 60
            (value,) = conn.execute(
                "INSERT INTO counters (name, value, expires_at) VALUES (:name, 1, :expires_at)"
                " ON CONFLICT (name) DO UPDATE SET"
                " value = CASE WHEN expires_at <= :now THEN 1 ELSE value + 1 END,"
                " expires_at = CASE WHEN expires_at <= :now OR expires_at IS NULL THEN :expires_at"
                " ELSE expires_at END"
                " RETURNING value",
                {"name": counter, "expires_at": expires_at, "now": now},
            ).fetchone()
        return value

    async def get_counter(self, counter: str) -> int:
        return await self._db.run(self._get_counter, counter, time.time())

    def _get_counter(self, counter: str, now: float) -> int:
        sql = "SELECT value FROM counters WHERE name = ? AND (expires_at IS NULL OR expires_at > ?)"
        row = self._db.conn.execute(sql, (counter, now)).fetchone()
        return row[0] if row else 0

    async def delete_counter(self, counter: str) -> None:
        await self._db.run(self._delete_counter, counter)

    def _delete_counter(self, counter: str) -> None:
        self._db.conn.execute("DELETE FROM counters WHERE name = ?", (counter,))

    async def take_token(self, bucket: str, per_second: float, burst: float) -> float:
        if per_second <= 0 or burst < 1:
            raise ValueError("a bucket needs per_second > 0 and burst >= 1")
        return self._buckets.take(bucket, per_second, burst)  # in memory: no thread hop, no disk write

    async def drop_token_bucket(self, bucket: str) -> bool:
        return self._buckets.drop(bucket)

    async def zadd(self, name: str, member: str, score: float) -> None:
        await self._db.run(self._zadd, name, member, float(score))

    def _zadd(self, name: str, member: str, score: float) -> None:
        self._db.conn.execute(
            "INSERT INTO zsets (name, member, score) VALUES (?, ?, ?)"
            " ON CONFLICT (name, member) DO UPDATE SET score = excluded.score",
            (name, member, score),
        )

    async def zrem(self, name: str, member: str) -> None:
        await self._db.run(self._zrem, name, member)

    def _zrem(self, name: str, member: str) -> None:
        self._db.conn.execute("DELETE FROM zsets WHERE name = ? AND member = ?", (name, member))

    async def zrange(self, name: str) -> list[tuple[str, float]]:
        return await self._db.run(self._zrange, name)

    def _zrange(self, name: str) -> list[tuple[str, float]]:
        sql = "SELECT member, score FROM zsets WHERE name = ? ORDER BY score, member"
        return [(member, score) for member, score in self._db.conn.execute(sql, (name,))]

    async def close(self) -> None:
        await self._db.close()


def open_sqlite_stores(path: str | Path) -> Stores:
    """Stores on one SQLite file (created with its directories if missing)."""
    db = SqliteDB(path)
    bus = LocalEventBus()
    return Stores(trackers=SqliteTrackerStore(db, bus), bus=bus, kv=SqliteKeyValue(db), backend="sqlite",
                  ping=lambda: db.run(lambda: db.conn.execute("SELECT 1").fetchone()))
