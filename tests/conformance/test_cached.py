"""The conformance suite on CachedFeedbackStore (real Redis) over memory, SQLite and
PostgreSQL: the cache must be invisible except for speed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from feedback_asgi.storage.memory import MemoryFeedbackStore
from feedback_asgi.storage.redis import CachedFeedbackStore, make_redis_client
from feedback_asgi.storage.sql.store import SqlFeedbackStore
from feedback_asgi.testing.conformance import StoreConformanceSuite

pytestmark = pytest.mark.redis


class TestCachedMemoryStore(StoreConformanceSuite):
    @pytest.fixture
    async def store(self, redis_url: str, redis_prefix: str) -> AsyncIterator[CachedFeedbackStore]:
        store = CachedFeedbackStore(
            MemoryFeedbackStore(), make_redis_client(redis_url), prefix=redis_prefix
        )
        yield store
        assert store.redis_errors == 0
        await store.close()


class TestCachedSqliteStore(StoreConformanceSuite):
    @pytest.fixture
    async def store(
        self, tmp_path: Path, redis_url: str, redis_prefix: str
    ) -> AsyncIterator[CachedFeedbackStore]:
        backing = SqlFeedbackStore(f"sqlite+aiosqlite:///{tmp_path / 'feedback.db'}")
        store = CachedFeedbackStore(backing, make_redis_client(redis_url), prefix=redis_prefix)
        yield store
        assert store.redis_errors == 0
        await store.close()


@pytest.mark.postgres
class TestCachedPostgresStore(StoreConformanceSuite):
    @pytest.fixture
    async def store(
        self, postgres_url: str, redis_url: str, redis_prefix: str
    ) -> AsyncIterator[CachedFeedbackStore]:
        backing = SqlFeedbackStore(postgres_url)
        store = CachedFeedbackStore(backing, make_redis_client(redis_url), prefix=redis_prefix)
        yield store
        assert store.redis_errors == 0
        await store.close()
