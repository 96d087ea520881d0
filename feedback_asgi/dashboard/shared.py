"""Where the dashboard's state shared by workers lives with ``redis_url``: sign-outs and the
sign-in limit, in Redis, on the kit's Redis client and on the event loop that client uses.

The calls go through the loop that owns the kit's Redis client (see
:mod:`feedback_asgi.storage.redis_home`); the sign-in limit uses the rate limiter's shared
buckets (:func:`feedback_asgi.web.rate_limit.shared_buckets`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from feedback_asgi.storage.redis_home import Runner, redis_home
from feedback_asgi.web.rate_limit import shared_buckets

if TYPE_CHECKING:
    from feedback_asgi.kit import FeedbackKit

__all__ = ["SharedRevocations", "shared_buckets", "shared_revocations"]


class SharedRevocations(Protocol):
    """Where every worker sees sign-outs (Redis)."""

    async def add(self, nonce: str, ttl_seconds: int) -> bool:
        """Record ``nonce`` for ``ttl_seconds``; ``False`` when it could not."""
        ...

    async def contains(self, nonce: str) -> bool | None:
        """Whether ``nonce`` was recorded; ``None`` when unknown (unreachable)."""
        ...


class _RevocationsOnLoop:
    __slots__ = ("inner", "run")

    def __init__(self, inner: SharedRevocations, run: Runner) -> None:
        self.inner = inner
        self.run = run

    async def add(self, nonce: str, ttl_seconds: int) -> bool:
        added: bool = await self.run(self.inner.add(nonce, ttl_seconds))
        return added

    async def contains(self, nonce: str) -> bool | None:
        found: bool | None = await self.run(self.inner.contains(nonce))
        return found


def shared_revocations(kit: FeedbackKit) -> SharedRevocations | None:
    """Sign-outs in Redis, under ``config.redis_key_prefix``; ``None`` without ``redis_url``."""
    config = kit.config
    if config.redis_url is None:
        return None
    from feedback_asgi.storage.redis.revocations import RedisRevocations

    client, runner = redis_home(kit.exchanges)
    revocations = RedisRevocations.for_url(config.redis_url, prefix=config.redis_key_prefix,
                                           client=client, timeout=config.connect_timeout_seconds)
    return revocations if runner is None else _RevocationsOnLoop(revocations, runner)
