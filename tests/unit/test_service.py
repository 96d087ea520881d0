from __future__ import annotations

import logging
import math
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.core.exceptions import FeedbackValidationError, StorageUnavailableError
from feedback_asgi.core.records import FeedbackItem, FeedbackType, utc_now
from feedback_asgi.feedback.collector import FeedbackCollector
from feedback_asgi.feedback.hooks import FeedbackHooks, FeedbackStoredHook
from feedback_asgi.feedback.service import LIFTED_KEYS, FeedbackService
from feedback_asgi.storage.memory import MemoryFeedbackStore


async def test_submit_feedback_stores_a_rating_on_the_trace() -> None:
    store = MemoryFeedbackStore()
    service = FeedbackService(store)
    await service.submit_feedback("trace-1", 4, comment=" solid ", metadata={"source": "sdk"})
    [item] = await store.find_by_trace("trace-1")
    assert item.feedback_type is FeedbackType.RATING
    assert item.value == 4.0
    assert item.context == {"trace_id": "trace-1"}
    assert item.metadata == {"comment": "solid", "source": "sdk"}


async def test_correlation_keys_are_lifted_from_metadata_into_context() -> None:
    store = MemoryFeedbackStore()
    metadata = {key: f"{key}-value" for key in LIFTED_KEYS} | {"ui": "v2"}
    original = dict(metadata)
    await FeedbackService(store).submit_feedback("t", 5, metadata=metadata)
    [item] = await store.find_by_trace("t")
    assert item.context == {"trace_id": "t", **{k: f"{k}-value" for k in LIFTED_KEYS}}
    assert item.metadata == {"ui": "v2"}
    assert metadata == original
    assert [i.id for i in await store.find_by_session("session_id-value")] == [item.id]


async def test_stats_filter_on_model_and_provider() -> None:
    service = FeedbackService(MemoryFeedbackStore())
    await service.submit_feedback("t1", 5, metadata={"model": "alpha", "provider": "p1"})
    await service.submit_feedback("t2", 3, metadata={"model": "alpha", "provider": "p2"})
    await service.submit_feedback("t3", 1, metadata={"model": "beta", "provider": "p1"})
    overall = await service.get_feedback_stats()
    assert overall["total_count"] == 3
    assert overall["average_rating"] == pytest.approx(3.0)
    assert overall["by_type"] == {"rating": 3}
    assert "model" not in overall
    alpha = await service.get_feedback_stats(model="alpha")
    assert alpha["average_rating"] == pytest.approx(4.0)
    assert alpha["total_count"] == 2
    assert alpha["model"] == "alpha"
    p1 = await service.get_feedback_stats(provider="p1")
    assert (p1["total_count"], p1["average_rating"], p1["provider"]) == (2, 3.0, "p1")
    both = await service.get_feedback_stats(model="beta", provider="p2")
    assert both["total_count"] == 0
    assert both["average_rating"] is None


async def test_stats_include_thumbs_and_other_kinds_from_the_collector() -> None:
    service = FeedbackService(MemoryFeedbackStore())
    collector = service.collector
    await collector.collect_thumbs("up", context={"model": "m"})
    await collector.collect_thumbs("up", context={"model": "m"})
    await collector.collect_thumbs("down", context={"model": "m"},
                                   metadata={"comment": "wrong"})
    await collector.collect_text("nice", context={"model": "m"})
    stats = await service.get_feedback_stats(model="m")
    assert stats["by_type"] == {"thumbs": 3, "text": 1}
    assert (stats["thumbs_up"], stats["thumbs_down"]) == (2, 1)
    assert stats["thumbs_up_rate"] == pytest.approx(2 / 3)
    assert stats["average_rating"] is None
    empty = await FeedbackService(MemoryFeedbackStore()).get_feedback_stats()
    assert empty["thumbs_up_rate"] is None
    assert empty["total_count"] == 0


async def test_stats_window_excludes_older_items() -> None:
    store = MemoryFeedbackStore()
    old = FeedbackItem(FeedbackType.RATING, 1.0, created_at=utc_now() - timedelta(hours=30))
    assert (await store.save(old)).is_ok()
    service = FeedbackService(store)
    await service.submit_feedback("t", 5)
    assert (await service.get_feedback_stats())["average_rating"] == 5.0
    wide = await service.get_feedback_stats(window_hours=48)
    assert wide["average_rating"] == pytest.approx(3.0)
    assert wide["window_hours"] == 48


async def test_stats_count_only_the_latest_version() -> None:
    service = FeedbackService(MemoryFeedbackStore())
    first = await service.collector.collect("rating", 1, {"trace_id": "t"})
    assert first.is_ok()
    await service.collector.collect("rating", 5, supersedes=first.unwrap().id)
    stats = await service.get_feedback_stats()
    assert (stats["total_count"], stats["average_rating"]) == (1, 5.0)


async def test_custom_kinds_show_up_in_stats() -> None:
    service = FeedbackService(MemoryFeedbackStore())
    service.collector.registry.register(
        "preference", lambda payload, config: service.collector.registry.process(
            "text", payload
        ).map(lambda p: p.__class__("preference", p.value))
    )
    assert (await service.collector.collect("preference", "A over B")).is_ok()
    assert (await service.get_feedback_stats())["by_type"] == {"preference": 1}


async def test_rating_range_follows_the_config() -> None:
    service = FeedbackService(config=FeedbackConfig(rating_min=0, rating_max=1))
    await service.submit_feedback("t", 0.25)
    with pytest.raises(FeedbackValidationError) as caught:
        await service.submit_feedback("t", 4)
    assert caught.value.fields == {"score": "must be between 0 and 1"}
    assert (await service.get_feedback_stats())["average_rating"] == 0.25


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        (("t", 9), {}, "score"),
        (("t", "5"), {}, "score"),
        (("t", True), {}, "score"),
        (("t", math.nan), {}, "score"),
        (("t", None), {}, "score"),
        (("", 3), {}, "trace_id"),
        (("   ", 3), {}, "trace_id"),
        ((None, 3), {}, "trace_id"),
        (("t" * 300, 3), {}, "trace_id"),
        (("t", 3), {"comment": 12}, "comment"),
        (("t", 3), {"comment": "x" * 10_001}, "comment"),
        (("t", 3), {"metadata": "nope"}, "metadata"),
        (("t", 3), {"metadata": {"model": 5}}, "metadata.model"),
        (("t", 3), {"metadata": {"blob": object()}}, "metadata"),
    ],
)
async def test_bad_input_raises_a_validation_error_naming_the_field(
    args: tuple[Any, ...], kwargs: dict[str, Any], field: str
) -> None:
    store = MemoryFeedbackStore()
    with pytest.raises(FeedbackValidationError) as caught:
        await FeedbackService(store).submit_feedback(*args, **kwargs)
    assert list(caught.value.fields) == [field]
    assert field in caught.value.message
    assert len(store) == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"model": 3}, "model"),
        ({"provider": ""}, "provider"),
        ({"window_hours": 0}, "window_hours"),
        ({"window_hours": -1}, "window_hours"),
        ({"window_hours": math.inf}, "window_hours"),
        ({"window_hours": "24"}, "window_hours"),
        ({"window_hours": True}, "window_hours"),
    ],
)
async def test_stats_reject_bad_arguments(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(FeedbackValidationError) as caught:
        await FeedbackService(MemoryFeedbackStore()).get_feedback_stats(**kwargs)
    assert list(caught.value.fields) == [field]


async def test_storage_failure_raises_storage_unavailable() -> None:
    service = FeedbackService(MemoryFeedbackStore(max_items=0))
    with pytest.raises(StorageUnavailableError):
        await service.submit_feedback("t", 3)


async def test_no_store_keeps_items_in_memory_and_logs_it_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="feedback_asgi.feedback.service"):
        service = FeedbackService()
        await service.submit_feedback("t", 3)
        await service.submit_feedback("t2", 4)
    memory_logs = [r for r in caplog.records if "memory" in r.getMessage()]
    assert len(memory_logs) == 1
    assert isinstance(service.store, MemoryFeedbackStore)
    assert (await service.get_feedback_stats())["total_count"] == 2


async def test_service_shares_the_collector_hooks_and_store() -> None:
    hooks = FeedbackHooks()
    seen: list[FeedbackStoredHook] = []
    hooks.subscribe(FeedbackStoredHook, seen.append)
    collector = FeedbackCollector(MemoryFeedbackStore(), hooks=hooks)
    service = FeedbackService(collector=collector)
    assert service.store is collector.storage
    assert service.config is collector.config
    await service.submit_feedback("t", 5)
    assert [s.item.context["trace_id"] for s in seen] == ["t"]


async def test_assigning_the_store_rewires_the_collector() -> None:
    service = FeedbackService(MemoryFeedbackStore())
    late = MemoryFeedbackStore()
    service.store = late
    assert service.collector.storage is late
    await service.submit_feedback("t", 2)
    assert len(late) == 1


def test_a_store_and_a_collector_with_another_store_conflict() -> None:
    with pytest.raises(ValueError, match="either"):
        FeedbackService(MemoryFeedbackStore(), collector=FeedbackCollector(MemoryFeedbackStore()))


_ANY = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=4), st.integers(),
                                                          max_size=2),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    trace_id=_ANY,
    score=_ANY,
    comment=_ANY,
    metadata=st.one_of(_ANY, st.dictionaries(st.sampled_from([*LIFTED_KEYS, "x", "comment"]),
                                             _ANY, max_size=4)),
)
async def test_random_submissions_store_or_raise_a_field_error(
    trace_id: Any, score: Any, comment: Any, metadata: Any
) -> None:
    store = MemoryFeedbackStore()
    rejected: FeedbackValidationError | None = None
    try:
        await FeedbackService(store).submit_feedback(trace_id, score, comment, metadata)
    except FeedbackValidationError as error:
        rejected = error
    if rejected is not None:
        assert rejected.fields
        assert len(store) == 0
    else:
        assert len(store) == 1
        [item] = await store.find_by_trace(trace_id)
        assert isinstance(item.value, float)
