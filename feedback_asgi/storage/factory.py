"""Build the stores a ``FeedbackConfig`` asks for. Nothing here connects.

* ``database_url = "memory://"``: :class:`~feedback_asgi.storage.memory.MemoryFeedbackStore`;
  any other URL: :class:`~feedback_asgi.storage.sql.store.SqlFeedbackStore` (SQLAlchemy is
  imported only then).
* ``redis_url`` set: the feedback store is wrapped in ``CachedFeedbackStore`` and exchanges
  go to ``RedisExchangeStore`` (redis-py is imported only then); otherwise exchanges stay
  in a bounded in-memory store.

A store whose database is down is still built; its methods answer
``Err(StorageUnavailableError)`` (writes) or raise it (reads) until the database is back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.storage.base import ExchangeStoreProtocol, FeedbackStoreProtocol
from feedback_asgi.storage.memory import MemoryExchangeStore, MemoryFeedbackStore

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["MEMORY_URL", "build_exchange_store", "build_store", "is_memory_url"]

MEMORY_URL = "memory://"


def is_memory_url(url: str) -> bool:
    """Whether ``url`` selects the in-memory feedback store."""
    return url.strip().lower().rstrip("/") in ("memory:", "memory:/")


def _redis_client(config: FeedbackConfig) -> aioredis.Redis:
    from feedback_asgi.storage.redis import make_redis_client

    assert config.redis_url is not None
    return make_redis_client(config.redis_url, timeout=config.connect_timeout_seconds)


def build_store(config: FeedbackConfig) -> FeedbackStoreProtocol:
    """The feedback store for ``config`` (memory, SQL, either one behind the Redis cache)."""
    store: FeedbackStoreProtocol
    if is_memory_url(config.database_url):
        store = MemoryFeedbackStore()
    else:
        from feedback_asgi.storage.sql.store import SqlFeedbackStore

        store = SqlFeedbackStore(config.database_url, config=config)
    if config.redis_url is None:
        return store
    from feedback_asgi.storage.redis import CachedFeedbackStore

    return CachedFeedbackStore(
        store,
        _redis_client(config),
        prefix=config.redis_key_prefix,
        ttl=config.cache_ttl_seconds,
    )


def build_exchange_store(config: FeedbackConfig) -> ExchangeStoreProtocol:
    """The exchange store for ``config``: Redis when ``redis_url`` is set, else memory."""
    if config.redis_url is None:
        return MemoryExchangeStore(
            max_items=config.exchange_max_items, default_ttl=config.exchange_ttl_seconds
        )
    from feedback_asgi.storage.redis import RedisExchangeStore

    return RedisExchangeStore(
        _redis_client(config),
        prefix=config.redis_key_prefix,
        default_ttl=config.exchange_ttl_seconds,
        write_timeout=config.connect_timeout_seconds,
    )
