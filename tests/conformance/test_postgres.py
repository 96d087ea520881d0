"""The conformance suite on PostgreSQL (asyncpg, JSONB), in a private database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from feedback_asgi.storage.sql.store import SqlFeedbackStore
from feedback_asgi.testing.conformance import StoreConformanceSuite

pytestmark = pytest.mark.postgres


class TestPostgresStore(StoreConformanceSuite):
    @pytest.fixture
    async def store(self, postgres_url: str) -> AsyncIterator[SqlFeedbackStore]:
        store = SqlFeedbackStore(postgres_url)
        yield store
        await store.close()
