"""What the Redis stores share: a client with short timeouts, and a guard around each call.

The guard turns every Redis failure (refused, timeout, connection dropped, error reply)
into :class:`RedisBypass`, counts it, logs it once per outage (not per request), and skips
Redis for ``retry_interval`` seconds after a failure so a dead server does not cost every
request a timeout. Imports ``redis``: only the Redis store modules import this one.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

__all__ = ["RedisBypass", "RedisGuard", "key_part", "make_redis_client", "text"]

T = TypeVar("T")

_FAILURES = (RedisError, OSError, TimeoutError)


def make_redis_client(
    url: str, *, timeout: float = 1.0, max_connections: int = 64
) -> aioredis.Redis:
    """A client for ``url`` with short timeouts, no retry loop and a bounded pool.

    Nothing connects until the first command. ``timeout`` bounds connecting, waiting for
    a reply, and waiting for a free connection when ``max_connections`` are busy (a burst
    of callers queues instead of opening a socket each), so a dead or silent server
    costs at most about that per call.

    A command whose connection turns out to be broken is sent once more on a new one, at
    once: after an outage the pool still holds connections the outage broke, and each
    would otherwise fail one call, long after Redis is back. A timeout is never retried.
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        retry_on_timeout=False,
    )
    return aioredis.Redis.from_pool(pool)


def key_part(value: str) -> str:
    """``value`` made safe and bounded for a key: raw if short, else its SHA-256."""
    if len(value) <= 128:
        return "r:" + value
    return "h:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def text(value: object) -> str:
    """A Redis reply as ``str`` (whether the client decodes responses or not)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


class RedisBypass(Exception):
    """Redis could not be used for this call; the caller falls back to its backing store."""


class RedisGuard:
    """Runs Redis calls for one store: bounded in time, counted, logged once per outage.

    Public counters: ``errors`` (failed calls), ``bypassed`` (calls skipped during the
    pause after a failure). ``error_generation`` grows with every failure, so a store can
    tell whether something went wrong since it last looked.
    """

    def __init__(
        self, name: str, logger: logging.Logger, *, timeout: float, retry_interval: float
    ) -> None:
        self.name = name
        self.timeout = timeout
        self.retry_interval = retry_interval
        self.errors = 0
        self.bypassed = 0
        self.error_generation = 0
        self.last_failure_timed_out = False
        """Whether the latest failure was a timeout (a busy event loop, or a silent
        Redis) rather than a refused or broken connection."""
        self._logger = logger
        self._healthy = True
        self._retry_at = 0.0

    @property
    def healthy(self) -> bool:
        """False from a failure until the next successful call."""
        return self._healthy

    async def run(
        self,
        call: Callable[[], Awaitable[T]],
        *,
        force: bool = False,
        seconds: float | None = None,
    ) -> T:
        """Await ``call()`` within the timeout; raise :class:`RedisBypass` if Redis failed.

        During the pause after a failure the call is skipped (``force`` tries anyway).
        ``seconds`` replaces the guard's ``timeout`` for this call.
        """
        if not force and self._retry_at and time.monotonic() < self._retry_at:
            self.bypassed += 1
            raise RedisBypass(f"{self.name}: Redis paused after a failure")
        try:
            async with asyncio.timeout(self.timeout if seconds is None else seconds):
                result = await call()
        except _FAILURES as exc:
            self.failed(exc)
            raise RedisBypass(f"{self.name}: {exc!r}") from exc
        if not self._healthy:
            self._healthy = True
            self._retry_at = 0.0
            self._logger.info("%s: Redis is reachable again; using it", self.name)
        return result

    def failed(self, exc: BaseException) -> None:
        """Record a failure: count it, pause, and log it if it starts an outage."""
        self.errors += 1
        self.error_generation += 1
        self.last_failure_timed_out = isinstance(exc, TimeoutError)
        self._retry_at = time.monotonic() + self.retry_interval
        if self._healthy:
            self._healthy = False
            self._logger.warning(
                "%s: Redis unavailable (%r); falling back until it answers again "
                "(logged once per outage; see the redis_errors counter)",
                self.name,
                exc,
            )


class GuardedByRedis:
    """The counters and settings of a store's :class:`RedisGuard` (``self._guard``)."""

    _guard: RedisGuard

    @property
    def redis_errors(self) -> int:
        """Redis calls that failed."""
        return self._guard.errors

    @property
    def redis_bypassed(self) -> int:
        """Redis calls skipped during the pause after a failure."""
        return self._guard.bypassed

    @property
    def timeout(self) -> float:
        """Seconds one Redis call may take before it counts as a failure."""
        return self._guard.timeout

    @timeout.setter
    def timeout(self, seconds: float) -> None:
        self._guard.timeout = seconds

    @property
    def retry_interval(self) -> float:
        """Seconds Redis is left alone after a failure."""
        return self._guard.retry_interval

    @retry_interval.setter
    def retry_interval(self, seconds: float) -> None:
        self._guard.retry_interval = seconds
