"""``RedisRevocations``: signed-out dashboard cookies in Redis, seen by every worker.

One key per signed-out cookie, ``<prefix>dashboard:revoked:<nonce>``, that expires when
the cookie would have. Every call goes through a :class:`RedisGuard` (a deadline, counted,
logged once per outage); a failure answers ``None``/``False`` and the caller decides.
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

from feedback_asgi.storage.redis.client import (
    RedisBypass,
    RedisGuard,
    key_part,
    make_redis_client,
)

__all__ = ["RedisRevocations"]

logger = logging.getLogger("feedback_asgi.storage.redis")


class RedisRevocations:
    """Revoked cookie nonces in Redis; :meth:`contains` is ``None`` when Redis cannot answer."""

    def __init__(self, redis: aioredis.Redis, *, prefix: str, timeout: float) -> None:
        self.redis = redis
        self.prefix = prefix
        self._guard = RedisGuard("dashboard sign-outs", logger, timeout=timeout,
                                 retry_interval=1.0)

    @classmethod
    def for_url(cls, url: str, *, prefix: str, client: object = None,
                timeout: float = 1.0) -> RedisRevocations:
        """On ``client`` when it is a Redis client (the kit's, closed with it), else a new one."""
        redis = client if isinstance(client, aioredis.Redis) else make_redis_client(
            url, timeout=timeout
        )
        return cls(redis, prefix=prefix, timeout=timeout)

    @property
    def redis_errors(self) -> int:
        """Redis calls that failed."""
        return self._guard.errors

    def _key(self, nonce: str) -> str:
        return f"{self.prefix}dashboard:revoked:{key_part(nonce)}"

    async def add(self, nonce: str, ttl_seconds: int) -> bool:
        """Record ``nonce`` for ``ttl_seconds``; ``False`` if Redis did not take it."""
        key = self._key(nonce)
        try:  # forced: a sign-out is rare and worth a try even just after a failure
            await self._guard.run(lambda: self.redis.set(key, b"1", ex=max(1, ttl_seconds)),
                                  force=True)
        except RedisBypass:
            return False
        return True

    async def contains(self, nonce: str) -> bool | None:
        """Whether ``nonce`` was recorded; ``None`` if Redis did not answer."""
        key = self._key(nonce)
        try:
            found = await self._guard.run(lambda: self.redis.exists(key))
        except RedisBypass:
            return None
        return bool(found)
