"""Stores: embedded by default (SQLite + in-process), Redis to scale (design.md).

    stores = create_stores(os.environ.get("REDIS_URL"), models_dir.parent / "kefu.db")
    async with stores.trackers.lock(cid):
        tracker = Tracker.from_events(cid, await stores.trackers.events(cid))
        ...
        await stores.trackers.append(cid, new_events)   # also published on stores.bus
    await stores.close()
"""

from __future__ import annotations

from pathlib import Path

from bot.stores.base import EventBus, KeyValue, LockTimeout, Stores, Subscription, TrackerStore

__all__ = ["EventBus", "KeyValue", "LockTimeout", "Stores", "Subscription", "TrackerStore", "create_stores"]

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def create_stores(
    url: str | None, sqlite_path: str | Path, *, redis_prefix: str = "kefu:", lock_ttl_s: float = 10.0
) -> Stores:
    """Redis stores for a redis:// (rediss://, unix://) URL, else SQLite stores at sqlite_path.

    The caller decides the URL (REDIS_URL, endpoints.yml); this only opens it. SQLite opens its file here
    (creating directories); Redis connects on first use.
    """
    if url:
        if not url.startswith(REDIS_SCHEMES):
            scheme = url.split("://")[0]
            raise ValueError(f"unsupported store URL scheme {scheme!r}: use redis://host:port/db, or no URL "
                             "for the embedded SQLite store")
        from bot.stores.redis import open_redis_stores

        return open_redis_stores(url, prefix=redis_prefix, lock_ttl_s=lock_ttl_s)
    from bot.stores.sqlite import open_sqlite_stores

    return open_sqlite_stores(sqlite_path)
