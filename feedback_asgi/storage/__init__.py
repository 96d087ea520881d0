"""Storage backends for feedback items and captured exchanges.

``build_store(config)`` and ``build_exchange_store(config)`` (in :mod:`.factory`) pick the
backend from the configuration; nothing here connects until first use.
"""

from feedback_asgi.storage.base import (
    ExchangeStoreProtocol,
    FeedbackStoreProtocol,
    Page,
)
from feedback_asgi.storage.memory import MemoryExchangeStore, MemoryFeedbackStore

__all__ = [
    "ExchangeStoreProtocol",
    "FeedbackStoreProtocol",
    "MemoryExchangeStore",
    "MemoryFeedbackStore",
    "Page",
]
