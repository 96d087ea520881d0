"""Per-client rate limit on ``POST /feedback``: token buckets per address and per subject.

A client may send ``rate_limit_burst`` posts at once, then ``rate_limit_per_minute`` a
minute; past that the endpoint answers 429 with ``Retry-After`` before reading the body.
Every post counts against the bucket of its peer address (``scope["client"]``; run uvicorn
with ``--proxy-headers`` behind a proxy so that it is the real one) and, when it carries a
valid ``X-Feedback-Token`` issued to someone, against that subject's bucket too: both are
limited, so a client that rotates sessions (an unsigned cookie, say) stays within its
address's limit, and one person on many addresses within the person's. No key is a value
the client chooses freely: subjects are the keyed digests inside verified tokens.

With ``redis_url`` set the buckets live in Redis (one Lua script, atomic, on Redis's clock),
so the limit holds across worker processes. When Redis fails, each worker falls back to
its own in-memory buckets until Redis answers again: a Redis outage never turns into an
error. Without Redis the buckets are in memory (per process, bounded in size).
"""

from __future__ import annotations

import logging
import math
import time
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from feedback_asgi.core.result import Ok
from feedback_asgi.storage.base import RateDecision, RemoteBuckets
from feedback_asgi.storage.redis_home import Runner, redis_home
from feedback_asgi.web.wire import HttpError, header

if TYPE_CHECKING:
    from feedback_asgi.kit import FeedbackKit

__all__ = [
    "LocalRateLimiter",
    "RateLimiter",
    "check_rate_limit",
    "client_keys",
    "limiter_for",
    "shared_buckets",
]

logger = logging.getLogger("feedback_asgi")

MAX_LOCAL_CLIENTS = 100_000
"""Most clients tracked in memory; the least recently seen are forgotten first."""

_limiters: weakref.WeakKeyDictionary[Any, RateLimiter | None] = weakref.WeakKeyDictionary()


class LocalRateLimiter:
    """Token buckets in this process's memory, at most ``max_clients`` of them."""

    __slots__ = ("_buckets", "burst", "clock", "max_clients", "per_second")

    def __init__(
        self,
        per_minute: int,
        burst: int | None = None,
        *,
        max_clients: int = MAX_LOCAL_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute < 1 or (burst is not None and burst < 1):
            raise ValueError("per_minute and burst must be at least 1")
        self.per_second = per_minute / 60.0
        self.burst = burst if burst is not None else per_minute
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def hit(self, key: str) -> RateDecision:
        """Take one token from ``key``'s bucket, if it has one."""
        now = self.clock()
        tokens, last = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.per_second)
        if tokens >= 1.0:
            decision = RateDecision(True)
            tokens -= 1.0
        else:
            decision = RateDecision(False, (1.0 - tokens) / self.per_second)
        self._buckets[key] = (tokens, now)  # re-inserted last: dict order is recency
        if len(self._buckets) > self.max_clients:
            del self._buckets[next(iter(self._buckets))]
        return decision


class RateLimiter:
    """Shared buckets when ``remote`` is given and answers, else local ones."""

    __slots__ = ("local", "remote")

    def __init__(
        self, per_minute: int, burst: int | None = None, *, remote: RemoteBuckets | None = None
    ) -> None:
        self.local = LocalRateLimiter(per_minute, burst)
        self.remote = remote

    async def hit(self, key: str) -> RateDecision:
        """Take one token from ``key``'s bucket."""
        if self.remote is not None:
            decision = await self.remote.hit(key, self.local.per_second, self.local.burst)
            if decision is not None:
                return decision
        return self.local.hit(key)


class _BucketsOnLoop:
    """Shared buckets whose Redis client belongs to another loop (Django's background one)."""

    __slots__ = ("inner", "run")

    def __init__(self, inner: RemoteBuckets, run: Runner) -> None:
        self.inner = inner
        self.run = run

    async def hit(self, key: str, per_second: float, burst: int) -> RateDecision | None:
        decision: RateDecision | None = await self.run(self.inner.hit(key, per_second, burst))
        return decision


def shared_buckets(kit: FeedbackKit) -> RemoteBuckets | None:
    """Rate-limit buckets in Redis under ``config.redis_key_prefix``, on the kit's Redis
    client and the loop that client runs on; ``None`` without ``redis_url``."""
    config = kit.config
    if config.redis_url is None:
        return None
    from feedback_asgi.storage.redis.rate_buckets import RedisRateBuckets

    client, runner = redis_home(kit.exchanges)
    buckets = RedisRateBuckets.for_url(config.redis_url, prefix=config.redis_key_prefix,
                                       client=client, timeout=config.connect_timeout_seconds)
    return buckets if runner is None else _BucketsOnLoop(buckets, runner)


def limiter_for(kit: FeedbackKit) -> RateLimiter | None:
    """The kit's limiter (built once), or ``None`` when ``rate_limit_per_minute`` is unset."""
    try:
        return _limiters[kit]
    except KeyError:
        pass
    per_minute = kit.config.rate_limit_per_minute
    limiter = None
    if per_minute is not None:
        limiter = RateLimiter(per_minute, kit.config.rate_limit_burst, remote=shared_buckets(kit))
    _limiters[kit] = limiter
    return limiter


def client_keys(kit: FeedbackKit, scope: Mapping[str, Any]) -> list[str]:
    """The buckets a request counts against: its peer address, and the subject of a valid
    token header (its keyed digest) when the token was issued to someone."""
    client = scope.get("client")
    host = client[0] if client else None
    keys = ["ip:" + (str(host) if host else "unknown")]
    token = header(scope, b"x-feedback-token")
    if token is not None:
        claims = kit.signer.verify(token)
        if isinstance(claims, Ok) and not claims.value.anonymous:
            keys.append("s:" + claims.value.subject_digest)
    return keys


async def check_rate_limit(kit: FeedbackKit, scope: Mapping[str, Any]) -> None:
    """Raise the 429 :class:`HttpError` (with ``Retry-After``) when the client is over its limit."""
    limiter = limiter_for(kit)
    if limiter is None:
        return
    decisions = [await limiter.hit(key) for key in client_keys(kit, scope)]
    if all(decision.allowed for decision in decisions):
        return
    seconds = max(1, math.ceil(max(decision.retry_after for decision in decisions)))
    raise HttpError(
        429,
        "rate_limited",
        f"too many feedback posts from this client; retry after {seconds} s",
        headers=((b"retry-after", str(seconds).encode()),),
    )

