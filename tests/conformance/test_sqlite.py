"""The conformance suite on SQLite (a file, as in the default configuration)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from feedback_asgi.storage.sql.store import SqlFeedbackStore
from feedback_asgi.testing.conformance import StoreConformanceSuite


class TestSqliteStore(StoreConformanceSuite):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[SqlFeedbackStore]:
        store = SqlFeedbackStore(f"sqlite+aiosqlite:///{tmp_path / 'feedback.db'}")
        yield store
        await store.close()
