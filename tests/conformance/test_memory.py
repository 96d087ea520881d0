"""The conformance suite on the in-memory store."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from feedback_asgi.storage.memory import MemoryFeedbackStore
from feedback_asgi.testing.conformance import StoreConformanceSuite


class TestMemoryStore(StoreConformanceSuite):
    @pytest.fixture
    async def store(self) -> AsyncIterator[MemoryFeedbackStore]:
        store = MemoryFeedbackStore()
        yield store
        await store.close()
