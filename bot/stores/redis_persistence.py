"""Does the Redis we share keep what we write? Checked once at start-up, because a Redis without persistence
forgets every agent, session and conversation when it restarts, and nothing else would say so.

kefu needs AOF (`appendonly yes`, `appendfsync everysec`: at most about a second of writes lost if Redis
itself dies); RDB snapshots alone (`save …`) lose everything since the last snapshot but are better than
nothing. Managed Redis services often disable CONFIG; then `INFO persistence` is asked instead, and if that is
refused too we say we could not tell.
"""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 5.0
ADVICE = ("set `appendonly yes` and `appendfsync everysec` in redis.conf (or "
          "`redis-cli CONFIG SET appendonly yes` then `CONFIG REWRITE`); see README, 'Redis persistence'")


async def persistence_problem(redis: aioredis.Redis) -> str | None:
    """What is wrong with the server's persistence, in words for the operator; None when AOF is on."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            appendonly, save = await _config(redis)
    except (RedisError, OSError, TimeoutError) as exc:
        return f"could not check Redis persistence ({type(exc).__name__}: {exc}); make sure AOF is on: {ADVICE}"
    if appendonly:
        return None
    if save is None:
        return f"Redis has AOF off (CONFIG is disabled, so RDB save points are unknown); {ADVICE}"
    if save:
        return (f"Redis has AOF off (RDB snapshots only, save {save!r}): a Redis crash loses what was written "
                f"since the last snapshot; {ADVICE}")
    return ("Redis persistence is OFF (appendonly no, no save points): a Redis restart erases every agent, "
            f"session and conversation; {ADVICE}")


async def _config(redis: aioredis.Redis) -> tuple[bool, str | None]:
    """(AOF on, RDB save points or None if unknown) from CONFIG GET, or from INFO where CONFIG is disabled."""
    try:
        config = await redis.config_get("appendonly")
        config.update(await redis.config_get("save"))
        return config.get("appendonly") == "yes", config.get("save") or ""
    except ResponseError:  # CONFIG renamed, disabled or not allowed (managed Redis, ACLs): INFO still tells AOF
        info = await redis.info("persistence")
        return bool(info.get("aof_enabled")), None


async def warn_if_not_persistent(redis: aioredis.Redis) -> None:
    """Log, loudly, when the Redis kefu shares would lose data on a restart."""
    problem = await persistence_problem(redis)
    if problem:
        log.warning("!!! %s", problem)
    else:
        log.info("Redis persistence: AOF on")
