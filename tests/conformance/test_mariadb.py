"""The conformance suite on MariaDB (asyncmy, JSON), in a private database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from feedback_asgi.storage.sql.store import SqlFeedbackStore
from feedback_asgi.testing.conformance import StoreConformanceSuite

pytestmark = pytest.mark.mariadb


class TestMariadbStore(StoreConformanceSuite):
    @pytest.fixture
    async def store(self, mysql_url: str) -> AsyncIterator[SqlFeedbackStore]:
        store = SqlFeedbackStore(mysql_url)
        yield store
        await store.close()
