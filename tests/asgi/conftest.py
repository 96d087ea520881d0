"""Fixtures for the ASGI tests: a fresh testing kit per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from feedback_asgi.core.records import Exchange
from feedback_asgi.kit import FeedbackKit, set_default_kit
from feedback_asgi.storage.memory import MemoryExchangeStore


@pytest.fixture
def kit() -> FeedbackKit:
    """A kit with in-memory stores whose exchanges are written at once."""
    return FeedbackKit.for_testing()


@pytest.fixture(autouse=True)
def _no_shared_default_kit() -> Iterator[None]:
    set_default_kit(None)
    yield
    set_default_kit(None)


def stored(kit: FeedbackKit) -> list[Exchange]:
    """Every exchange in the kit's in-memory exchange store, oldest first."""
    store = kit.exchanges
    assert isinstance(store, MemoryExchangeStore)
    return [exchange for _, exchange in store._entries.values()]


def only(kit: FeedbackKit) -> Exchange:
    """The one exchange stored."""
    exchanges = stored(kit)
    assert len(exchanges) == 1, exchanges
    return exchanges[0]
