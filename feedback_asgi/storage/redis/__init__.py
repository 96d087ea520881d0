"""Redis backends (needs ``pip install feedback-asgi[redis]``).

* :class:`CachedFeedbackStore` (``storage/redis/cache.py``): write-through cache of result
  lists over any feedback store.
* :class:`RedisExchangeStore` (``storage/redis/exchanges.py``): exchanges shared by workers.
* :func:`make_redis_client`: a ``redis.asyncio.Redis`` with short timeouts, no retry loop
  (one resend on a new connection when a pooled one turns out broken).
"""

from __future__ import annotations

try:
    import redis.asyncio  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("the Redis backends need redis-py: pip install feedback-asgi[redis]") from exc

from feedback_asgi.storage.redis.cache import CachedFeedbackStore
from feedback_asgi.storage.redis.client import make_redis_client
from feedback_asgi.storage.redis.exchanges import RedisExchangeStore

__all__ = ["CachedFeedbackStore", "RedisExchangeStore", "make_redis_client"]
