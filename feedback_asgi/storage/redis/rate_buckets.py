"""``RedisRateBuckets``: the rate limiter's token buckets in Redis, shared by every worker.

One Lua script per request refills and takes a token atomically, timed by Redis's own
clock (``TIME``), so workers on different hosts agree. Each bucket is a small hash under
``<prefix>ratelimit:<client>`` that expires once it would be full again. Redis trouble
answers ``None`` (the caller falls back to local buckets), counted and logged once.
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

from feedback_asgi.storage.base import RateDecision
from feedback_asgi.storage.redis.client import (
    RedisBypass,
    RedisGuard,
    key_part,
    make_redis_client,
)

__all__ = ["RedisRateBuckets"]

logger = logging.getLogger("feedback_asgi.storage.redis")

# KEYS[1] bucket; ARGV[1] tokens per millisecond, ARGV[2] burst.
# Returns {allowed (0/1), milliseconds until one more token}.
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = math.ceil((1 - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate) + 1000)
return {allowed, wait}
"""


class RedisRateBuckets:
    """Token buckets in Redis; :meth:`hit` answers ``None`` when Redis cannot be used."""

    def __init__(
        self, redis: aioredis.Redis, *, prefix: str = "feedback_asgi:", timeout: float = 0.25
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self._script = redis.register_script(_TAKE)
        self._guard = RedisGuard("RedisRateBuckets", logger, timeout=timeout, retry_interval=1.0)

    @classmethod
    def for_url(
        cls,
        url: str,
        *,
        prefix: str,
        client: object = None,
        timeout: float = 0.25,
    ) -> RedisRateBuckets:
        """Buckets on ``client`` when it is a Redis client, else on a new client for ``url``."""
        redis = client if isinstance(client, aioredis.Redis) else make_redis_client(
            url, timeout=timeout
        )
        return cls(redis, prefix=prefix, timeout=min(timeout, 0.25))

    @property
    def redis_errors(self) -> int:
        """Redis calls that failed."""
        return self._guard.errors

    async def hit(self, key: str, per_second: float, burst: int) -> RateDecision | None:
        """Take one token from ``key``'s bucket; ``None`` if Redis did not answer."""
        bucket = f"{self.prefix}ratelimit:{key_part(key)}"
        try:
            reply = await self._guard.run(
                lambda: self._script(keys=[bucket], args=[per_second / 1000.0, burst])
            )
        except RedisBypass:
            return None
        try:
            allowed, wait_ms = int(reply[0]), int(reply[1])
        except (TypeError, ValueError, IndexError):
            logger.warning("unexpected rate limit reply %r; not limiting", reply)
            return None
        return RateDecision(bool(allowed), wait_ms / 1000.0)
