"""``feedback_asgi.analytics``: window strings, report JSON, the fallback for other stores."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from feedback_asgi.analytics import (
    feedback_stats,
    feedback_timeseries,
    parse_window,
    resolve_window,
)
from feedback_asgi.core.exceptions import FeedbackValidationError
from feedback_asgi.core.records import FeedbackItem
from feedback_asgi.feedback.service import FeedbackService
from feedback_asgi.storage.memory import MemoryFeedbackStore
from feedback_asgi.storage.stats import StatsStoreProtocol
from tests.storage.test_stats import at, save_fixture


@pytest.mark.parametrize(("text", "span"), [
    ("90m", timedelta(minutes=90)), ("24h", timedelta(hours=24)), ("7d", timedelta(days=7)),
    ("30D", timedelta(days=30)), (" 2w ", timedelta(weeks=2)), ("90d", timedelta(days=90)),
])
def test_parse_window(text: str, span: timedelta) -> None:
    assert parse_window(text) == span


@pytest.mark.parametrize("text", ["", "7", "d7", "7y", "1.5h", "-3d", "0h", "7 days", "99999w"])
def test_bad_windows_name_the_field(text: str) -> None:
    with pytest.raises(FeedbackValidationError) as caught:
        parse_window(text)
    assert "window" in caught.value.fields


def test_resolve_window_prefers_explicit_bounds() -> None:
    now = datetime(2026, 1, 2, tzinfo=UTC)
    assert resolve_window("24h", now=now) == (now - timedelta(hours=24), now)
    assert resolve_window("24h", since=at(0), until=at(5)) == (at(0), at(5))
    assert resolve_window("1h", until=at(5)) == (at(4), at(5))
    with pytest.raises(FeedbackValidationError):
        resolve_window(None, since=at(5), until=at(1))
    with pytest.raises(FeedbackValidationError):
        resolve_window(None, since=datetime(2026, 1, 1))  # no time zone


async def test_report_json_by_model_with_totals() -> None:
    store = MemoryFeedbackStore()
    await save_fixture(store)
    report = await feedback_stats(store, since=at(1), until=at(9.5), by="model", unique=True)
    data = report.to_dict()
    assert data["by"] == "model"
    assert data["filters"] == {}
    assert [g["key"] for g in data["groups"]] == ["a", "b", None]
    assert data["totals"]["total_count"] == 8
    assert data["totals"]["unique_users"] == 5  # u1..u5 over the window, not a sum
    assert data["totals"]["thumbs_up_rate"] == 2 / 3
    plain = (await feedback_stats(store, since=at(1), until=at(9.5), by="model")).to_dict()
    assert plain["totals"]["total_count"] == 8
    assert "unique_users" not in plain["totals"]
    with pytest.raises(FeedbackValidationError):
        await feedback_stats(store, by="colour")


async def test_timeseries_json_and_bucket_limit() -> None:
    store = MemoryFeedbackStore()
    await save_fixture(store)
    series = (await feedback_timeseries(store, interval="hour", since=at(1), until=at(4))).to_dict()
    assert series["interval"] == "hour"
    assert [(p["bucket"], p["total_count"]) for p in series["points"]] == [
        (at(1).isoformat(), 1), (at(2).isoformat(), 1), (at(3).isoformat(), 2)]
    with pytest.raises(FeedbackValidationError) as caught:
        await feedback_timeseries(store, interval="hour", window="3000d")
    assert "interval" in caught.value.fields


class _PlainStore:
    """A user's store with no ``stats``: analytics reads its live items instead."""

    def __init__(self, inner: MemoryFeedbackStore) -> None:
        self.inner = inner

    def iter_items(self, **kwargs: Any) -> AsyncIterator[FeedbackItem]:
        return self.inner.iter_items(**kwargs)


async def test_stores_without_stats_fall_back_to_their_items() -> None:
    inner = MemoryFeedbackStore()
    await save_fixture(inner)
    plain = _PlainStore(inner)
    assert not isinstance(plain, StatsStoreProtocol)
    fallback = await feedback_stats(plain, since=at(1), until=at(9.5), by="model")  # type: ignore[arg-type]
    native = await feedback_stats(inner, since=at(1), until=at(9.5), by="model")
    assert fallback.to_dict() == native.to_dict()


async def test_service_stats_use_analytics() -> None:
    store = MemoryFeedbackStore()
    service = FeedbackService(store)
    now = datetime.now(UTC)
    for value, model in ((5, "m"), (3, "m"), (1, "other")):
        item = FeedbackItem("rating", value, context={"model": model}, created_at=now - timedelta(hours=1))
        assert (await store.save(item)).is_ok()
    old = FeedbackItem("rating", 1, context={"model": "m"}, created_at=now - timedelta(hours=30))
    assert (await store.save(old)).is_ok()
    stats = await service.get_feedback_stats(model="m", window_hours=24)
    assert (stats["total_count"], stats["average_rating"], stats["model"]) == (2, 4.0, "m")
    assert (await service.get_feedback_stats(model="m", window_hours=48))["total_count"] == 3
