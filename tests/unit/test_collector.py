from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.core.exceptions import (
    FeedbackError,
    FeedbackProcessingError,
    FeedbackValidationError,
    StorageUnavailableError,
)
from feedback_asgi.core.records import FeedbackItem, FeedbackType
from feedback_asgi.core.result import Err, Ok, Result
from feedback_asgi.feedback.collector import MAX_CORRELATION_LENGTH, FeedbackCollector
from feedback_asgi.feedback.hooks import (
    FeedbackHooks,
    FeedbackProcessedHook,
    FeedbackStoredHook,
    FeedbackSubmittedEvent,
    FeedbackSubmittedHook,
    HookResult,
    NextHook,
)
from feedback_asgi.feedback.processors import (
    FeedbackProcessorRegistry,
    ProcessedFeedback,
    ProcessResult,
)
from feedback_asgi.storage.memory import MemoryFeedbackStore


class RaisingStore(MemoryFeedbackStore):
    """A store that breaks the protocol by raising instead of returning Err."""

    async def save(self, item: FeedbackItem) -> Result[str, FeedbackError]:
        raise ConnectionResetError("connection reset by peer")

    async def save_many(
        self, items: Sequence[FeedbackItem]
    ) -> Result[list[str], FeedbackError]:
        raise ConnectionResetError("connection reset by peer")

    async def get(self, feedback_id: str) -> FeedbackItem | None:
        raise ConnectionResetError("connection reset by peer")


def full_store() -> MemoryFeedbackStore:
    """A real memory store with no room left: every save is Err(StorageUnavailableError)."""
    return MemoryFeedbackStore(max_items=0)


async def stored(collector: FeedbackCollector) -> list[FeedbackItem]:
    return await collector.get_feedback()


# the seed API


async def test_collect_rating_returns_the_id_of_the_stored_item() -> None:
    collector = FeedbackCollector()
    feedback_id = await collector.collect_rating(
        5, context={"model": "gpt-4", "input": "Hello"}, metadata={"source": "widget"}
    )
    [item] = await stored(collector)
    assert item.id == feedback_id
    assert item.feedback_type is FeedbackType.RATING
    assert item.value == 5.0
    assert item.context == {"model": "gpt-4", "input": "Hello"}
    assert item.metadata == {"source": "widget"}


async def test_each_collect_method_stores_its_kind() -> None:
    collector = FeedbackCollector()
    await collector.collect_text("  too verbose ")
    await collector.collect_correction("incorrect output", "correct output",
                                       context={"model_id": "123"})
    await collector.collect_label("spam", {"subject": "WIN"})
    await collector.collect_thumbs(True)
    await collector.collect_thumbs("down", metadata={"comment": "wrong date"})
    values = {(str(i.feedback_type), repr(i.value)) for i in await stored(collector)}
    assert values == {
        ("text", repr("too verbose")),
        ("correction", repr({"original": "incorrect output", "corrected": "correct output"})),
        ("label", repr({"label": "spam", "input": {"subject": "WIN"}})),
        ("thumbs", "1"),
        ("thumbs", "-1"),
    }


async def test_context_and_metadata_are_copied_never_mutated() -> None:
    collector = FeedbackCollector()
    context = {"trace_id": "t-1", "input": {"q": "x"}}
    metadata = {"comment": "  nice  ", "source": "api"}
    await collector.collect_rating(4, context=context, metadata=metadata)
    assert context == {"trace_id": "t-1", "input": {"q": "x"}}
    assert metadata == {"comment": "  nice  ", "source": "api"}
    [item] = await stored(collector)
    assert item.metadata == {"comment": "nice", "source": "api"}
    assert item.context is not context
    context["trace_id"] = "changed later"
    assert item.context["trace_id"] == "t-1"


async def test_blank_comment_is_dropped_from_metadata() -> None:
    collector = FeedbackCollector()
    await collector.collect_rating(3, metadata={"comment": "   "})
    [item] = await stored(collector)
    assert "comment" not in item.metadata


async def test_neutral_thumbs_needs_a_comment() -> None:
    collector = FeedbackCollector()
    with pytest.raises(FeedbackValidationError) as caught:
        await collector.collect_thumbs(None)
    assert "value" in caught.value.fields
    await collector.collect_thumbs(None, metadata={"comment": "not sure"})
    [item] = await stored(collector)
    assert item.value is None
    assert item.comment == "not sure"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.collect_rating(9), "value"),
        (lambda c: c.collect_rating("5"), "value"),
        (lambda c: c.collect_rating(True), "value"),
        (lambda c: c.collect_text(""), "value"),
        (lambda c: c.collect_text(42), "value"),
        (lambda c: c.collect_correction("same", "same"), "value.corrected"),
        (lambda c: c.collect_correction(None, "x"), "value.original"),
        (lambda c: c.collect_label(None, "x"), "value.label"),
        (lambda c: c.collect_label({1: "x"}, "x"), "value.label"),
        (lambda c: c.collect_thumbs("sideways"), "value"),
        (lambda c: c.collect_rating(3, context="not a dict"), "context"),
        (lambda c: c.collect_rating(3, context={"trace_id": 7}), "context.trace_id"),
        (lambda c: c.collect_rating(3, context={"model": ""}), "context.model"),
        (lambda c: c.collect_rating(3, context={"session_id": "s" * 256}), "context.session_id"),
        (lambda c: c.collect_rating(3, context={"input": {1, 2}}), "context"),
        (lambda c: c.collect_rating(3, metadata=["x"]), "metadata"),
        (lambda c: c.collect_rating(3, metadata={"comment": 5}), "comment"),
        (lambda c: c.collect_rating(3, metadata={"n": float("nan")}), "metadata"),
    ],
)
async def test_bad_input_raises_a_validation_error_naming_the_field_and_stores_nothing(
    call: Any, field: str
) -> None:
    collector = FeedbackCollector()
    with pytest.raises(FeedbackValidationError) as caught:
        await call(collector)
    assert list(caught.value.fields) == [field]
    assert await stored(collector) == []


async def test_correlation_values_up_to_the_limit_are_accepted() -> None:
    collector = FeedbackCollector()
    await collector.collect_rating(3, context={"trace_id": "t" * MAX_CORRELATION_LENGTH})
    assert len(await stored(collector)) == 1


async def test_storage_failure_raises_storage_unavailable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    collector = FeedbackCollector(full_store())
    with caplog.at_level(logging.WARNING, logger="feedback_asgi.feedback.collector"), pytest.raises(
        StorageUnavailableError
    ):
        await collector.collect_rating(4)
    assert any("not stored" in r.getMessage() for r in caplog.records)


async def test_a_store_that_raises_is_reported_as_unavailable_not_crashing() -> None:
    collector = FeedbackCollector(RaisingStore())
    result = await collector.collect(FeedbackType.RATING, 4)
    assert isinstance(result, Err)
    assert isinstance(result.error, StorageUnavailableError)
    assert "ConnectionResetError" in result.error.message
    with pytest.raises(StorageUnavailableError):
        await collector.collect_text("hello")


# the generic path


async def test_collect_returns_ok_with_the_stored_item() -> None:
    collector = FeedbackCollector()
    result = await collector.collect("thumbs", "up", {"trace_id": "t"}, {"comment": " ok "})
    assert isinstance(result, Ok)
    item = result.value
    assert (item.feedback_type, item.value, item.comment) == (FeedbackType.THUMBS, 1, "ok")
    assert await collector.storage.get(item.id) == item


async def test_collect_comment_keyword_wins_over_metadata() -> None:
    collector = FeedbackCollector()
    result = await collector.collect("rating", 2, None, {"comment": "old"}, comment="new")
    assert isinstance(result, Ok)
    assert result.value.metadata == {"comment": "new"}


async def test_collect_never_raises_for_bad_input() -> None:
    collector = FeedbackCollector()
    for kind, value in [("nope", 1), (None, 1), ("rating", object()), ("label", {"label": []})]:
        result = await collector.collect(kind, value)  # type: ignore[arg-type]
        if kind == "label":
            assert isinstance(result, Ok)
            continue
        assert isinstance(result, Err)
        assert isinstance(result.error, FeedbackValidationError)


async def test_collect_storage_failure_is_err_not_raise() -> None:
    result = await FeedbackCollector(full_store()).collect("rating", 3)
    assert isinstance(result, Err)
    assert isinstance(result.error, StorageUnavailableError)


async def test_custom_kind_goes_through_its_processor_and_storage() -> None:
    registry = FeedbackProcessorRegistry.with_defaults()

    def preference(payload: Mapping[str, Any], config: FeedbackConfig) -> ProcessResult:
        value = payload.get("value")
        if value not in ("a", "b"):
            return Err(FeedbackValidationError.for_field("value", "must be 'a' or 'b'"))
        return Ok(ProcessedFeedback("preference", value))

    registry.register("preference", preference)
    collector = FeedbackCollector(registry=registry)
    assert isinstance(await collector.collect("preference", "a"), Ok)
    rejected = await collector.collect("preference", "c")
    assert isinstance(rejected, Err)
    [item] = await collector.get_feedback("preference")
    assert item.feedback_type == "preference"
    assert item.value == "a"


async def test_registry_config_is_used_when_no_config_is_given() -> None:
    config = FeedbackConfig(rating_min=0, rating_max=1)
    collector = FeedbackCollector(registry=FeedbackProcessorRegistry.with_defaults(config))
    assert collector.config is config
    await collector.collect_rating(0.5)
    with pytest.raises(FeedbackValidationError, match="between 0 and 1"):
        await collector.collect_rating(3)


# supersede and retract


async def test_an_edit_supersedes_and_inherits_the_context() -> None:
    collector = FeedbackCollector()
    first = await collector.collect("rating", 2, {"trace_id": "t-9", "model": "m"})
    assert isinstance(first, Ok)
    edit = await collector.collect("rating", 4, supersedes=first.value.id)
    assert isinstance(edit, Ok)
    assert edit.value.supersedes == first.value.id
    assert edit.value.context == {"trace_id": "t-9", "model": "m"}
    assert [i.value for i in await stored(collector)] == [4.0]
    history = await collector.storage.history(first.value.id)
    assert [i.value for i in history] == [2.0, 4.0]


async def test_a_tombstone_retracts_the_item() -> None:
    collector = FeedbackCollector()
    first = await collector.collect("text", "rude answer", {"trace_id": "t"})
    assert isinstance(first, Ok)
    retraction = await collector.collect(
        "text", None, supersedes=first.value.id, tombstone=True, comment=" mistake "
    )
    assert isinstance(retraction, Ok)
    assert retraction.value.tombstone
    assert retraction.value.value is None
    assert retraction.value.metadata == {"comment": "mistake"}
    assert await stored(collector) == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": "rating", "value": None, "tombstone": True}, "supersedes"),
        ({"kind": "rating", "value": 3, "tombstone": True, "supersedes": "FIRST"}, "value"),
        ({"kind": "nope", "value": None, "tombstone": True, "supersedes": "FIRST"}, "type"),
        ({"kind": "rating", "value": 3, "supersedes": "no-such-id"}, "supersedes"),
        ({"kind": "rating", "value": 3, "supersedes": 17}, "supersedes"),
        ({"kind": "text", "value": "x", "supersedes": "FIRST"}, "supersedes"),
        ({"kind": "rating", "value": 3, "tombstone": "yes", "supersedes": "FIRST"}, "tombstone"),
    ],
)
async def test_bad_supersede_and_retract_requests(kwargs: dict[str, Any], field: str) -> None:
    collector = FeedbackCollector()
    first = await collector.collect("rating", 2)
    assert isinstance(first, Ok)
    if kwargs.get("supersedes") == "FIRST":
        kwargs["supersedes"] = first.value.id
    result = await collector.collect(**kwargs)
    assert isinstance(result, Err)
    assert isinstance(result.error, FeedbackValidationError)
    assert list(result.error.fields) == [field]
    assert await stored(collector) == [first.value]


async def test_superseding_twice_is_rejected_by_the_store() -> None:
    collector = FeedbackCollector()
    first = await collector.collect("rating", 2)
    assert isinstance(first, Ok)
    assert isinstance(await collector.collect("rating", 3, supersedes=first.value.id), Ok)
    again = await collector.collect("rating", 4, supersedes=first.value.id)
    assert isinstance(again, Err)
    assert isinstance(again.error, FeedbackValidationError)
    assert list(again.error.fields) == ["supersedes"]


async def test_a_store_that_cannot_read_makes_a_supersede_unavailable() -> None:
    result = await FeedbackCollector(RaisingStore()).collect("rating", 3, supersedes="x")
    assert isinstance(result, Err)
    assert isinstance(result.error, StorageUnavailableError)


# hooks


async def test_pipeline_order_submitted_wrappers_processed_stored_event() -> None:
    hooks = FeedbackHooks()
    log: list[str] = []
    hooks.subscribe(FeedbackSubmittedHook, lambda p: log.append(f"submitted {p.value!r}"))
    hooks.subscribe(FeedbackProcessedHook, lambda p: log.append(f"processed {p.item.value!r}"))
    hooks.subscribe(FeedbackStoredHook, lambda p: log.append(f"stored {p.item.value!r}"))
    hooks.subscribe(FeedbackSubmittedEvent, lambda e: log.append(f"event {e.item_type}"))

    async def wrapper(item: FeedbackItem, call_next: NextHook) -> HookResult:
        log.append("wrapper in")
        result = await call_next(item)
        log.append("wrapper out")
        return result

    hooks.add_wrapper(wrapper)
    collector = FeedbackCollector(hooks=hooks)
    await collector.collect_thumbs("up")
    assert log == [
        "submitted 'up'",
        "wrapper in",
        "processed 1",
        "stored 1",
        "event thumbs",
        "wrapper out",
    ]


async def test_submitted_fires_for_rejected_input_but_stored_does_not() -> None:
    hooks = FeedbackHooks()
    submitted: list[FeedbackSubmittedHook] = []
    stored_hooks: list[FeedbackStoredHook] = []
    hooks.subscribe(FeedbackSubmittedHook, submitted.append)
    hooks.subscribe(FeedbackStoredHook, stored_hooks.append)
    collector = FeedbackCollector(hooks=hooks)
    with pytest.raises(FeedbackValidationError):
        await collector.collect_rating(99, context={"trace_id": "t"})
    assert [(s.feedback_type, s.value, s.context) for s in submitted] == [
        ("rating", 99, {"trace_id": "t"})
    ]
    assert stored_hooks == []


async def test_a_wrapper_rejection_stores_nothing() -> None:
    hooks = FeedbackHooks()

    async def only_alpha(item: FeedbackItem, call_next: NextHook) -> HookResult:
        if item.context.get("model") != "alpha":
            raise FeedbackValidationError.for_field("context.model", "only alpha is rated")
        return await call_next(item)

    hooks.add_wrapper(only_alpha)
    collector = FeedbackCollector(hooks=hooks)
    with pytest.raises(FeedbackValidationError) as caught:
        await collector.collect_rating(3, context={"model": "beta"})
    assert list(caught.value.fields) == ["context.model"]
    await collector.collect_rating(3, context={"model": "alpha"})
    assert [i.context["model"] for i in await stored(collector)] == ["alpha"]


async def test_a_wrapper_can_change_what_is_stored() -> None:
    hooks = FeedbackHooks()

    async def tag(item: FeedbackItem, call_next: NextHook) -> HookResult:
        return await call_next(item.evolve(metadata={**item.metadata, "reviewed": True}))

    hooks.add_wrapper(tag)
    collector = FeedbackCollector(hooks=hooks)
    feedback_id = await collector.collect_text("fine")
    item = await collector.storage.get(feedback_id)
    assert item is not None
    assert item.metadata == {"reviewed": True}


async def test_a_failing_observer_never_loses_the_item() -> None:
    hooks = FeedbackHooks()

    def broken(payload: FeedbackStoredHook) -> None:
        raise RuntimeError("observer bug")

    hooks.subscribe(FeedbackStoredHook, broken)
    hooks.subscribe(FeedbackSubmittedHook, broken)  # type: ignore[arg-type]
    collector = FeedbackCollector(hooks=hooks)
    feedback_id = await collector.collect_rating(5)
    assert await collector.storage.get(feedback_id) is not None
    assert hooks.observer_errors == 2


async def test_a_crashing_wrapper_is_a_processing_error_and_stores_nothing() -> None:
    hooks = FeedbackHooks()

    async def crash(item: FeedbackItem, call_next: NextHook) -> HookResult:
        raise RuntimeError("bug")

    hooks.add_wrapper(crash)
    collector = FeedbackCollector(hooks=hooks)
    with pytest.raises(FeedbackProcessingError):
        await collector.collect_rating(5)
    assert await stored(collector) == []


async def test_config_require_comment_for_negative_applies_on_every_path() -> None:
    collector = FeedbackCollector(config=FeedbackConfig(require_comment_for_negative=True))
    with pytest.raises(FeedbackValidationError) as caught:
        await collector.collect_thumbs(False)
    assert list(caught.value.fields) == ["comment"]
    with pytest.raises(FeedbackValidationError):
        await collector.collect_rating(1)
    result = await collector.collect("rating", 1, comment="hallucinated a citation")
    assert isinstance(result, Ok)
    await collector.collect_rating(2)
    assert len(await stored(collector)) == 2


# reads


async def test_get_feedback_filters_by_type_newest_first_with_limit() -> None:
    collector = FeedbackCollector()
    for value in (1, 2, 3):
        await collector.collect_rating(value)
    await collector.collect_text("hello")
    ratings = await collector.get_feedback(FeedbackType.RATING)
    assert [i.value for i in ratings] == [3.0, 2.0, 1.0]
    assert [i.value for i in await collector.get_feedback("rating", limit=2)] == [3.0, 2.0]
    assert await collector.get_feedback(limit=0) == []
    assert len(await collector.get_feedback()) == 4


async def test_get_feedback_without_limit_pages_through_everything() -> None:
    collector = FeedbackCollector()
    await collector.storage.save_many([FeedbackItem(FeedbackType.THUMBS, 1) for _ in range(1203)])
    assert len(await collector.get_feedback()) == 1203
    assert len(await collector.get_feedback(limit=777)) == 777


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"feedback_type": "nope"}, "feedback_type"),
        ({"feedback_type": 3}, "feedback_type"),
        ({"limit": -1}, "limit"),
        ({"limit": "10"}, "limit"),
        ({"limit": True}, "limit"),
    ],
)
async def test_get_feedback_rejects_bad_arguments(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(FeedbackValidationError) as caught:
        await FeedbackCollector().get_feedback(**kwargs)
    assert list(caught.value.fields) == [field]


async def test_get_feedback_dict_round_trips() -> None:
    collector = FeedbackCollector()
    await collector.collect_label({"class": "cat"}, [1, 2], context={"trace_id": "t"})
    [data] = await collector.get_feedback_dict()
    assert data["feedback_type"] == "label"
    assert isinstance(data["created_at"], str)
    assert FeedbackItem.from_dict(data) == (await stored(collector))[0]


async def test_clear_empties_the_memory_store() -> None:
    collector = FeedbackCollector()
    await collector.collect_rating(3)
    collector.clear()
    assert await stored(collector) == []


async def test_storage_can_be_wired_late() -> None:
    collector = FeedbackCollector()
    await collector.collect_rating(3)
    durable = MemoryFeedbackStore()
    collector.storage = durable
    feedback_id = await collector.collect_rating(4)
    assert [i.id for i in await durable.find_by_type(FeedbackType.RATING)] == [feedback_id]
    collector.clear()  # clears whichever memory store is wired now
    assert len(durable) == 0


# property: nothing but validation errors, and nothing stored on error

_JSON = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
        st.sampled_from(["up", "down"]),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.one_of(st.text(max_size=5), st.integers()), children, max_size=3),
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.one_of(st.sampled_from(["rating", "thumbs", "text", "correction", "label"]),
                   st.text(max_size=6)),
    value=_JSON,
    context=st.one_of(st.none(), _JSON),
    metadata=st.one_of(st.none(), _JSON),
)
async def test_collect_with_random_input_is_ok_or_a_field_error(
    kind: str, value: Any, context: Any, metadata: Any
) -> None:
    collector = FeedbackCollector()
    result = await collector.collect(kind, value, context, metadata)
    items = await stored(collector)
    match result:
        case Ok(item):
            assert items == [item]
            assert FeedbackItem.from_dict(item.to_dict()) == item
        case Err(FeedbackValidationError() as error):
            assert error.fields
            assert items == []
        case _:
            pytest.fail(f"unexpected {result!r}")


async def test_item_id_sets_the_stored_id() -> None:
    collector = FeedbackCollector()
    result = await collector.collect("rating", 3, item_id="fixed-id-1")
    assert isinstance(result, Ok)
    assert result.value.id == "fixed-id-1"
    assert await collector.storage.get("fixed-id-1") == result.value
    again = await collector.collect("rating", 4, item_id="fixed-id-1")
    assert isinstance(again, Err)
    assert list(again.error.fields) == ["id"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("item_id", ["", 5, "x" * 256, "nul\x00"])
async def test_bad_item_id_is_a_field_error(item_id: Any) -> None:
    collector = FeedbackCollector()
    result = await collector.collect("rating", 3, item_id=item_id)
    assert isinstance(result, Err)
    assert isinstance(result.error, FeedbackValidationError)
    assert list(result.error.fields) == ["id"]
    assert await stored(collector) == []
