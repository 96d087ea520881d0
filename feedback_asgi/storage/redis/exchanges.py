"""``RedisExchangeStore``: captured exchanges in Redis (``SET ... PX``), shared by workers."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence

import redis.asyncio as aioredis

from feedback_asgi.core.exceptions import StorageUnavailableError
from feedback_asgi.core.records import Exchange
from feedback_asgi.storage.redis.client import (
    GuardedByRedis,
    RedisBypass,
    RedisGuard,
    key_part,
    text,
)

__all__ = ["RedisExchangeStore"]

logger = logging.getLogger("feedback_asgi.storage.redis")


def _json_default(value: object) -> object:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


class RedisExchangeStore(GuardedByRedis):
    """Exchanges under ``<prefix>exchange:<trace id>``, each with its own expiry.

    Never raises on Redis trouble: ``put`` answers ``False`` (the exchange writer keeps
    the exchange and retries), ``get`` answers ``None``; failures count in
    ``redis_errors``, lookups skipped during the ``retry_interval`` pause after a failure
    in ``redis_bypassed``, and an outage is logged once. ``ping()`` is the health check:
    it raises ``StorageUnavailableError`` when Redis does not answer.

    ``timeout`` (default 0.5 s) bounds each lookup: they run on the request path.
    Writes run off it, in the exchange writer, so they get ``write_timeout`` (default
    2 s; the factory passes ``connect_timeout_seconds``) and are never skipped by the
    pause: a lookup that timed out on a busy event loop does not cost a write.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        prefix: str = "feedback_asgi:",
        default_ttl: float = 86_400.0,
        write_timeout: float = 2.0,
    ) -> None:
        if default_ttl <= 0:
            raise ValueError("default_ttl must be positive")
        if write_timeout <= 0:
            raise ValueError("write_timeout must be positive")
        self.redis = redis
        self.prefix = prefix
        self.default_ttl = default_ttl
        self.write_timeout = write_timeout
        """Seconds one write may take before it counts as a failure."""
        self._guard = RedisGuard("RedisExchangeStore", logger, timeout=0.5, retry_interval=1.0)
        self.duplicates = 0
        """Writes refused because an exchange has that trace id already (``SET NX``): the
        first one stays. A retried write whose first try did land counts here too."""

    @property
    def healthy(self) -> bool:
        """False from a Redis failure until the next successful call."""
        return self._guard.healthy

    @property
    def worth_waiting(self) -> bool:
        """Whether a missing exchange may still show up: Redis answers, or its latest
        failure was a timeout (a busy event loop) rather than a refused connection."""
        return self._guard.healthy or self._guard.last_failure_timed_out

    def _key(self, trace_id: str) -> str:
        return f"{self.prefix}exchange:{key_part(trace_id)}"

    async def put(self, exchange: Exchange, ttl: float | None = None) -> bool:
        """Keep ``exchange`` for ``ttl`` seconds (``default_ttl`` when ``None``), unless an
        exchange with its trace id is stored already (never overwritten: ``SET NX``).

        ``True`` once Redis has it; ``False`` (never a raise) when Redis failed or did not
        answer within ``write_timeout``: the caller may retry.
        """
        key, payload, milliseconds = self._entry(exchange, ttl)
        try:
            stored = await self._guard.run(
                lambda: self.redis.set(key, payload, px=milliseconds, nx=True),
                force=True,
                seconds=self.write_timeout,
            )
        except RedisBypass:
            return False
        if not stored:
            self.duplicates += 1
        return True

    async def put_many(self, items: Sequence[tuple[Exchange, float | None]]) -> bool:
        """Keep each ``(exchange, ttl)`` of ``items``: one pipeline, one round trip.

        ``True`` once Redis has them all; ``False`` when Redis failed or did not answer
        within ``write_timeout`` (some may have been kept: a retry sets them again).
        """
        if not items:
            return True
        async with self.redis.pipeline(transaction=False) as pipeline:
            for exchange, ttl in items:
                key, payload, milliseconds = self._entry(exchange, ttl)
                pipeline.set(key, payload, px=milliseconds, nx=True)
            try:
                replies = await self._guard.run(
                    pipeline.execute, force=True, seconds=self.write_timeout
                )
            except RedisBypass:
                return False
        self.duplicates += sum(1 for reply in replies if not reply)
        return True

    def _entry(self, exchange: Exchange, ttl: float | None) -> tuple[str, str, int]:
        seconds = self.default_ttl if ttl is None else ttl
        payload = json.dumps(exchange.to_dict(), default=_json_default, separators=(",", ":"))
        return self._key(exchange.trace_id), payload, max(1, int(seconds * 1000))

    async def get(self, trace_id: str, *, force: bool = False) -> Exchange | None:
        """The exchange stored under ``trace_id``; ``None`` if unknown, expired or unreachable.

        ``force`` asks Redis even during the pause after a failure (a bounded wait for an
        exchange another worker is about to write: one timeout on a busy event loop must
        not make every lookup of the next second give up).
        """
        key = self._key(trace_id)
        try:
            raw = await self._guard.run(lambda: self.redis.get(key), force=force)
        except RedisBypass:
            return None
        if raw is None:
            return None
        try:
            return Exchange.from_dict(json.loads(text(raw)))
        except (ValueError, TypeError, AttributeError):
            logger.warning("unreadable exchange under %s; ignored", key)
            return None

    async def ping(self) -> float:
        """Round trip to Redis in ms; raises ``StorageUnavailableError`` if it is down."""
        started = time.perf_counter()
        try:
            await self._guard.run(self.redis.ping, force=True)
        except RedisBypass as exc:
            raise StorageUnavailableError(f"Redis unavailable: {exc.__cause__!r}") from exc
        return (time.perf_counter() - started) * 1000

    async def close(self) -> None:
        """Close the Redis client."""
        await self.redis.aclose()
