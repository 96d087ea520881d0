"""The collector's fast path (no hook registered) gives exactly what the full hook chain gives."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.core.exceptions import FeedbackError
from feedback_asgi.core.records import FeedbackItem
from feedback_asgi.core.result import Err, Ok, Result
from feedback_asgi.feedback import collector as collector_module
from feedback_asgi.feedback.collector import FeedbackCollector
from feedback_asgi.feedback.hooks import (
    FeedbackHooks,
    FeedbackStoredHook,
    HookResult,
    NextHook,
)
from feedback_asgi.storage.memory import MemoryFeedbackStore

CASES: list[tuple[str, Any, dict[str, Any] | None, dict[str, Any] | None, dict[str, Any]]] = [
    ("rating", 4, {"trace_id": "t-1", "model": "m"}, {"source": "http"}, {}),
    ("thumbs", "down", {"trace_id": "t-2"}, {"comment": "  wrong  "}, {}),
    ("thumbs", "down", {"trace_id": "t-2"}, None, {}),  # refused by the comment rule, if on
    ("text", "fine", None, None, {"item_id": "fixed-id-1"}),
    ("rating", 99, {"trace_id": "t-3"}, None, {}),  # out of range
    ("rating", 3, {"trace_id": 5}, None, {}),  # bad correlation key
    ("rating", 3, None, {"bad": "nul\x00"}, {}),  # unstorable metadata
    ("nope", 1, None, None, {}),  # unknown kind
    ("rating", 3, None, None, {"item_id": ""}),  # bad id
    ("rating", 3, None, None, {"supersedes": "missing"}),  # no such item
]


class RaisingStore(MemoryFeedbackStore):
    async def save(self, item: FeedbackItem) -> Result[str, FeedbackError]:
        raise ConnectionResetError("gone")

    async def save_many(self, items: Sequence[FeedbackItem]) -> Result[list[str], FeedbackError]:
        raise ConnectionResetError("gone")


def _shape(result: Result[FeedbackItem, FeedbackError]) -> tuple[Any, ...]:
    """The result without what differs by construction (random id, clock)."""
    match result:
        case Ok(item):
            return ("ok", item.feedback_type, item.value, item.context, item.metadata,
                    item.supersedes, item.tombstone, item.id if item.id.startswith("fixed") else "")
        case Err(error):
            return ("err", type(error), error.code, str(error), getattr(error, "fields", None))
    raise AssertionError(result)


async def _run_all(collector: FeedbackCollector) -> list[tuple[Any, ...]]:
    shapes = []
    for kind, value, context, metadata, extra in CASES:
        shapes.append(_shape(await collector.collect(kind, value, context, metadata, **extra)))
    # a second write under the same id: the store's conflict comes back unchanged
    shapes.append(_shape(await collector.collect("text", "again", None, None, item_id="fixed-id-1")))
    return shapes


def _busy_hooks(seen: list[str]) -> FeedbackHooks:
    hooks = FeedbackHooks()

    async def passthrough(item: FeedbackItem, call_next: NextHook) -> HookResult:
        return await call_next(item)

    hooks.add_wrapper(passthrough)
    hooks.subscribe(FeedbackStoredHook, lambda payload: seen.append(payload.feedback_id))
    return hooks


@pytest.mark.parametrize("comment_rule", [False, True])
@pytest.mark.parametrize("store", [MemoryFeedbackStore, RaisingStore])
async def test_fast_path_equals_full_hook_chain(comment_rule: bool, store: type) -> None:
    config = FeedbackConfig(require_comment_for_negative=comment_rule)
    quiet = FeedbackCollector(store(), config=config)
    assert quiet.hooks.quiet
    seen: list[str] = []
    busy = FeedbackCollector(store(), config=config, hooks=_busy_hooks(seen))
    assert not busy.hooks.quiet
    fast, full = await _run_all(quiet), await _run_all(busy)
    assert fast == full
    stored_fast = [item.id for item in await quiet.storage.find_by_trace("t-1")]
    stored_full = [item.id for item in await busy.storage.find_by_trace("t-1")]
    assert len(stored_fast) == len(stored_full)
    assert len(seen) == sum(1 for shape in full if shape[0] == "ok")


async def test_fast_path_skips_the_hook_machinery(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    async def counting_run(self: FeedbackHooks, *args: Any, **kwargs: Any) -> Any:
        calls.append("run")
        return await original_run(self, *args, **kwargs)

    def counting_payload(*args: Any, **kwargs: Any) -> Any:
        calls.append("payload")
        return original_payload(*args, **kwargs)

    original_run = FeedbackHooks.run
    original_payload = collector_module.FeedbackSubmittedHook
    collector = FeedbackCollector(MemoryFeedbackStore(), config=FeedbackConfig())
    # patch the instance and the module after construction: quiet stays as computed
    monkeypatch.setattr(collector.hooks, "run", counting_run.__get__(collector.hooks))
    monkeypatch.setattr(collector_module, "FeedbackSubmittedHook", counting_payload)
    assert (await collector.collect("rating", 4)).is_ok()
    assert calls == []
    collector.hooks.subscribe(FeedbackStoredHook, lambda payload: None)
    assert (await collector.collect("rating", 4)).is_ok()
    assert calls == ["payload", "run"]


def test_quiet_follows_registrations() -> None:
    hooks = FeedbackHooks()
    assert hooks.quiet
    unsubscribe = hooks.subscribe(FeedbackStoredHook, lambda payload: None)
    assert not hooks.quiet
    unsubscribe()
    assert hooks.quiet
    unsubscribe()  # twice is harmless
    assert hooks.quiet

    async def wrapper(item: FeedbackItem, call_next: NextHook) -> HookResult:
        return await call_next(item)

    hooks.add_wrapper(wrapper)
    assert not hooks.quiet
    other = hooks.subscribe(FeedbackStoredHook, lambda payload: None)
    other()
    assert not hooks.quiet  # the wrapper is still there


async def test_subclass_overriding_emit_keeps_the_full_path() -> None:
    seen: list[str] = []

    class Recording(FeedbackHooks):
        async def emit(self, payload: Any) -> None:
            seen.append(type(payload).__name__)
            await super().emit(payload)

    hooks = Recording()
    assert not hooks.quiet
    collector = FeedbackCollector(MemoryFeedbackStore(), config=FeedbackConfig(), hooks=hooks)
    assert (await collector.collect("rating", 4)).is_ok()
    assert seen == [
        "FeedbackSubmittedHook",
        "FeedbackProcessedHook",
        "FeedbackStoredHook",
        "FeedbackSubmittedEvent",
    ]


async def test_item_id_is_set_without_a_second_item() -> None:
    collector = FeedbackCollector(MemoryFeedbackStore(), config=FeedbackConfig())
    result = await collector.collect("rating", 4, {"trace_id": "t"}, item_id="fixed-id-9")
    assert isinstance(result, Ok)
    assert result.value.id == "fixed-id-9"
    assert await collector.storage.get("fixed-id-9") == result.value
