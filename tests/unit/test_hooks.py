from __future__ import annotations

import logging
from typing import Any

import pytest

from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.core.exceptions import (
    FeedbackError,
    FeedbackProcessingError,
    FeedbackValidationError,
    StorageUnavailableError,
)
from feedback_asgi.core.records import FeedbackItem, FeedbackType
from feedback_asgi.core.result import Err, Ok
from feedback_asgi.feedback.hooks import (
    FeedbackHooks,
    FeedbackProcessedHook,
    FeedbackStoredHook,
    FeedbackSubmittedEvent,
    FeedbackSubmittedHook,
    HookResult,
    NextHook,
    audit_log_hook,
    audit_record,
    combine_hooks,
    negative_without_comment,
    require_comment_for_negative,
    run_wrappers,
)


def rating(value: float, comment: str | None = None, **context: Any) -> FeedbackItem:
    metadata = {"comment": comment} if comment is not None else {}
    return FeedbackItem(FeedbackType.RATING, value, context=context, metadata=metadata)


class Sink:
    """A ``final`` step that records what reached it."""

    def __init__(self, outcome: HookResult | None = None) -> None:
        self.items: list[FeedbackItem] = []
        self.outcome = outcome

    async def __call__(self, item: FeedbackItem) -> HookResult:
        self.items.append(item)
        return self.outcome if self.outcome is not None else Ok(item)


def tracer(name: str, log: list[str]) -> Any:
    async def hook(item: FeedbackItem, call_next: NextHook) -> HookResult:
        log.append(f"{name} in")
        result = await call_next(item)
        log.append(f"{name} out")
        return result

    return hook


# wrapping hooks


async def test_wrappers_run_in_registration_order_around_final() -> None:
    log: list[str] = []
    hooks = FeedbackHooks()
    hooks.add_wrapper(tracer("a", log))
    hooks.add_wrapper(tracer("b", log))
    sink = Sink()
    item = rating(4)

    async def final(current: FeedbackItem) -> HookResult:
        log.append("final")
        return await sink(current)

    assert await hooks.run(item, final) == Ok(item)
    assert log == ["a in", "b in", "final", "b out", "a out"]
    assert len(hooks.wrappers) == 2


async def test_before_wrappers_run_first() -> None:
    log: list[str] = []
    hooks = FeedbackHooks()
    hooks.add_wrapper(tracer("registered", log))
    await hooks.run(rating(3), Sink(), before=(tracer("builtin", log),))
    assert log[:2] == ["builtin in", "registered in"]


async def test_a_wrapper_can_change_the_item_before_it_is_stored() -> None:
    async def tag(item: FeedbackItem, call_next: NextHook) -> HookResult:
        return await call_next(item.evolve(metadata={**item.metadata, "reviewed": True}))

    sink = Sink()
    result = await run_wrappers([tag], rating(5), sink)
    assert isinstance(result, Ok)
    assert sink.items[0].metadata == {"reviewed": True}
    assert result.value.metadata == {"reviewed": True}


@pytest.mark.parametrize("style", ["raise", "return"])
async def test_a_wrapper_can_reject_and_nothing_reaches_final(style: str) -> None:
    error = FeedbackValidationError.for_field("context.model", "unknown model")

    async def reject(item: FeedbackItem, call_next: NextHook) -> HookResult:
        if style == "raise":
            raise error
        return Err(error)

    sink = Sink()
    assert await run_wrappers([reject], rating(2), sink) == Err(error)
    assert sink.items == []


async def test_sync_wrapper_returning_the_next_awaitable_works() -> None:
    def passthrough(item: FeedbackItem, call_next: NextHook) -> Any:
        return call_next(item)

    sink = Sink()
    item = rating(3)
    assert await run_wrappers([passthrough], item, sink) == Ok(item)
    assert sink.items == [item]


async def test_final_runs_at_most_once_even_if_a_wrapper_calls_next_twice() -> None:
    async def twice(item: FeedbackItem, call_next: NextHook) -> HookResult:
        await call_next(item)
        return await call_next(item)

    sink = Sink()
    await run_wrappers([twice], rating(3), sink)
    assert len(sink.items) == 1


async def test_ok_without_calling_next_is_a_processing_error() -> None:
    async def liar(item: FeedbackItem, call_next: NextHook) -> HookResult:
        return Ok(item)

    sink = Sink()
    result = await run_wrappers([liar], rating(3), sink)
    assert isinstance(result, Err)
    assert isinstance(result.error, FeedbackProcessingError)
    assert sink.items == []


async def test_a_crashing_wrapper_before_storage_is_a_processing_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def crash(item: FeedbackItem, call_next: NextHook) -> HookResult:
        raise RuntimeError("bug")

    sink = Sink()
    with caplog.at_level(logging.ERROR, logger="feedback_asgi.feedback.hooks"):
        result = await run_wrappers([crash], rating(3), sink)
    assert isinstance(result, Err)
    assert isinstance(result.error, FeedbackProcessingError)
    assert "RuntimeError" in result.error.message
    assert sink.items == []
    assert any("RuntimeError" in r.getMessage() for r in caplog.records)


async def test_a_crash_after_storage_never_loses_the_stored_item() -> None:
    async def crash_after(item: FeedbackItem, call_next: NextHook) -> HookResult:
        await call_next(item)
        raise RuntimeError("notification service down")

    async def reject_after(item: FeedbackItem, call_next: NextHook) -> HookResult:
        await call_next(item)
        return Err(FeedbackValidationError.for_field("x", "too late"))

    for hook in (crash_after, reject_after):
        sink = Sink()
        item = rating(3)
        assert await run_wrappers([hook], item, sink) == Ok(item)
        assert sink.items == [item]


async def test_storage_failure_passes_through_the_chain() -> None:
    down = Err(StorageUnavailableError("db down"))
    log: list[str] = []
    result = await run_wrappers([tracer("a", log)], rating(3), Sink(down))
    assert result == down
    assert log == ["a in", "a out"]


async def test_a_wrapper_returning_garbage_is_a_processing_error() -> None:
    async def garbage(item: FeedbackItem, call_next: NextHook) -> Any:
        return "nope"

    result = await run_wrappers([garbage], rating(3), Sink())
    assert isinstance(result, Err)
    assert isinstance(result.error, FeedbackProcessingError)


async def test_combine_hooks_chains_in_order_and_nests_inside_other_wrappers() -> None:
    log: list[str] = []
    combined = combine_hooks(tracer("x", log), tracer("y", log), tracer("z", log))
    hooks = FeedbackHooks()
    hooks.add_wrapper(tracer("outer", log))
    hooks.add_wrapper(combined)
    item = rating(5)
    assert await hooks.run(item, Sink()) == Ok(item)
    assert log == [
        "outer in", "x in", "y in", "z in", "z out", "y out", "x out", "outer out"
    ]


async def test_combine_hooks_rejection_stops_the_rest() -> None:
    log: list[str] = []

    async def reject(item: FeedbackItem, call_next: NextHook) -> HookResult:
        raise FeedbackValidationError.for_field("value", "no")

    sink = Sink()
    result = await run_wrappers([combine_hooks(reject, tracer("never", log))], rating(1), sink)
    assert isinstance(result, Err)
    assert log == []
    assert sink.items == []


# observers


async def test_sync_and_async_observers_receive_typed_payloads() -> None:
    hooks = FeedbackHooks()
    seen: list[Any] = []

    def sync_observer(payload: FeedbackStoredHook) -> None:
        seen.append(("sync", payload.feedback_id))

    async def async_observer(payload: FeedbackStoredHook) -> None:
        seen.append(("async", payload.item.value))

    hooks.subscribe(FeedbackStoredHook, sync_observer)
    hooks.subscribe(FeedbackStoredHook, async_observer)
    item = rating(4)
    await hooks.emit(FeedbackStoredHook(item))
    await hooks.emit(FeedbackProcessedHook(item))  # nobody listens to this one
    assert seen == [("sync", item.id), ("async", 4)]


async def test_observers_only_see_their_own_type() -> None:
    hooks = FeedbackHooks()
    events: list[FeedbackSubmittedEvent] = []
    submitted: list[FeedbackSubmittedHook] = []
    hooks.subscribe(FeedbackSubmittedEvent, events.append)
    hooks.subscribe(FeedbackSubmittedHook, submitted.append)
    await hooks.emit(FeedbackSubmittedEvent("id-1", "rating"))
    assert [e.feedback_id for e in events] == ["id-1"]
    assert events[0].item_type == "rating"
    assert submitted == []


async def test_unsubscribe_stops_delivery() -> None:
    hooks = FeedbackHooks()
    got: list[object] = []
    unsubscribe = hooks.subscribe(FeedbackProcessedHook, got.append)
    await hooks.emit(FeedbackProcessedHook(rating(1)))
    unsubscribe()
    unsubscribe()  # twice is harmless
    await hooks.emit(FeedbackProcessedHook(rating(2)))
    assert len(got) == 1


async def test_a_failing_observer_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hooks = FeedbackHooks()
    got: list[object] = []

    async def broken(payload: FeedbackStoredHook) -> None:
        raise ValueError("observer bug")

    hooks.subscribe(FeedbackStoredHook, broken)
    hooks.subscribe(FeedbackStoredHook, got.append)
    with caplog.at_level(logging.ERROR, logger="feedback_asgi.feedback.hooks"):
        await hooks.emit(FeedbackStoredHook(rating(3)))
    assert len(got) == 1
    assert hooks.observer_errors == 1
    assert any("broken" in r.getMessage() for r in caplog.records)


def test_subscribing_to_an_unknown_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="not a feedback hook type"):
        FeedbackHooks().subscribe(dict, print)  # type: ignore[type-var]


def test_add_wrapper_returns_the_function_for_decorator_use() -> None:
    hooks = FeedbackHooks()

    @hooks.add_wrapper
    async def hook(item: FeedbackItem, call_next: NextHook) -> HookResult:
        return await call_next(item)

    assert hooks.wrappers == (hook,)


# ready-made hooks


@pytest.mark.parametrize(
    ("item", "negative"),
    [
        (FeedbackItem(FeedbackType.THUMBS, -1), True),
        (FeedbackItem(FeedbackType.THUMBS, -1, metadata={"comment": "wrong"}), False),
        (FeedbackItem(FeedbackType.THUMBS, 1), False),
        (FeedbackItem(FeedbackType.THUMBS, None, metadata={"comment": "meh"}), False),
        (rating(1.0), True),
        (rating(1.0, "bad answer"), False),
        (rating(2.0), False),
        (FeedbackItem(FeedbackType.TEXT, "bad"), False),
    ],
)
def test_negative_without_comment(item: FeedbackItem, negative: bool) -> None:
    assert negative_without_comment(item, 1.0) is negative


async def test_require_comment_for_negative_rejects_on_comment_field() -> None:
    hook = require_comment_for_negative()
    sink = Sink()
    result = await run_wrappers([hook], FeedbackItem(FeedbackType.THUMBS, -1), sink)
    assert isinstance(result, Err)
    assert isinstance(result.error, FeedbackValidationError)
    assert list(result.error.fields) == ["comment"]
    assert sink.items == []
    commented = FeedbackItem(FeedbackType.THUMBS, -1, metadata={"comment": "it lied"})
    assert await run_wrappers([hook], commented, sink) == Ok(commented)


async def test_require_comment_for_negative_uses_the_config_range() -> None:
    hook = require_comment_for_negative(FeedbackConfig(rating_min=0, rating_max=1))
    assert isinstance(await run_wrappers([hook], rating(0), Sink()), Err)
    assert isinstance(await run_wrappers([hook], rating(1), Sink()), Ok)
    lenient = require_comment_for_negative(lowest_rating=2)
    assert isinstance(await run_wrappers([lenient], rating(2), Sink()), Err)
    assert isinstance(await run_wrappers([lenient], rating(3), Sink()), Ok)


async def test_audit_log_hook_logs_one_record_per_stored_item_without_bodies(
    caplog: pytest.LogCaptureFixture,
) -> None:
    audit_logger = logging.getLogger("tests.audit")
    hook = audit_log_hook(logger=audit_logger)
    item = FeedbackItem(
        FeedbackType.RATING,
        2.0,
        context={"trace_id": "t-1", "model": "alpha", "input": "SECRET PROMPT",
                 "output": "SECRET ANSWER"},
        metadata={"comment": "private words"},
    )
    with caplog.at_level(logging.INFO, logger="tests.audit"):
        assert await run_wrappers([hook], item, Sink()) == Ok(item)
        await run_wrappers([hook], rating(3), Sink(Err(StorageUnavailableError("down"))))
    records = [r for r in caplog.records if r.name == "tests.audit"]
    assert len(records) == 1
    record = records[0]
    audit = record.__dict__["feedback_audit"]
    assert audit["feedback_id"] == item.id
    assert audit["trace_id"] == "t-1"
    assert audit["model"] == "alpha"
    assert audit["value"] == 2.0
    assert audit["has_comment"] is True
    dumped = repr(audit) + record.getMessage()
    for secret in ("SECRET PROMPT", "SECRET ANSWER", "private words"):
        assert secret not in dumped


def test_audit_record_leaves_out_text_values() -> None:
    item = FeedbackItem(FeedbackType.TEXT, "this is what I think", context={"user_id": "u1"})
    record = audit_record(item)
    assert "value" not in record
    assert record["user_id"] == "u1"
    assert record["feedback_type"] == "text"


async def test_audit_and_validation_combined_like_the_seed() -> None:
    audit_logger = logging.getLogger("tests.audit.combined")
    stored: list[FeedbackItem] = []
    combined = combine_hooks(require_comment_for_negative(), audit_log_hook(audit_logger))

    async def final(item: FeedbackItem) -> HookResult:
        stored.append(item)
        return Ok(item)

    rejected = await run_wrappers([combined], FeedbackItem(FeedbackType.THUMBS, -1), final)
    assert isinstance(rejected, Err)
    assert isinstance(rejected.error, FeedbackError)
    accepted = await run_wrappers([combined], FeedbackItem(FeedbackType.THUMBS, 1), final)
    assert isinstance(accepted, Ok)
    assert [i.value for i in stored] == [1]
