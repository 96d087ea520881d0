"""Lifecycle hooks: observers of typed events, and wrapping hooks that chain like middleware.

Every submission goes: :class:`FeedbackSubmittedHook` (raw input enters) -> processor ->
wrapping hooks, in registration order -> :class:`FeedbackProcessedHook` -> ``store.save`` ->
:class:`FeedbackStoredHook` and :class:`FeedbackSubmittedEvent`.

*Observers* (``hooks.subscribe(FeedbackStoredHook, fn)``) are sync or async callables; they
are awaited in subscription order, and one that raises is logged and skipped: it never
loses the item.

*Wrapping hooks* (``hooks.add_wrapper(fn)``) see the item and decide what happens next::

    async def only_known_models(item, call_next):
        if item.context.get("model") not in {"alpha", "beta"}:
            raise FeedbackValidationError.for_field("model", "unknown model")
        return await call_next(item.evolve(metadata={**item.metadata, "checked": True}))

A wrapper may reject (raise or return ``Err(FeedbackValidationError)``: nothing is stored),
pass a changed item on, or act on the outcome of ``call_next`` (audit, notification).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias, TypeVar

from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.core.exceptions import (
    FeedbackError,
    FeedbackProcessingError,
    FeedbackValidationError,
)
from feedback_asgi.core.records import FeedbackItem, FeedbackType, utc_now
from feedback_asgi.core.result import Err, Ok, Result

__all__ = [
    "FeedbackHooks",
    "FeedbackProcessedHook",
    "FeedbackStoredHook",
    "FeedbackSubmittedEvent",
    "FeedbackSubmittedHook",
    "HookResult",
    "NextHook",
    "WrappingHook",
    "audit_log_hook",
    "audit_record",
    "combine_hooks",
    "negative_without_comment",
    "require_comment_for_negative",
    "run_wrappers",
]

logger = logging.getLogger(__name__)

HookResult: TypeAlias = Result[FeedbackItem, FeedbackError]
NextHook: TypeAlias = Callable[[FeedbackItem], Awaitable[HookResult]]
"""What a wrapping hook calls to pass the item on; resolves to the stored item or an error."""
WrappingHook: TypeAlias = Callable[
    [FeedbackItem, NextHook], Awaitable[HookResult] | HookResult
]
"""``async def hook(item, call_next) -> Result[FeedbackItem, FeedbackError]``."""


# payloads


@dataclass(frozen=True, slots=True)
class FeedbackSubmittedHook:
    """Raw feedback entered the pipeline (before validation; it may still be rejected)."""

    feedback_type: str
    value: Any
    context: dict[str, Any]
    metadata: dict[str, Any]
    submitted_at: datetime = field(default_factory=utc_now)


@dataclass(frozen=True, slots=True)
class FeedbackProcessedHook:
    """Feedback passed its processor and every wrapping hook; it is about to be saved."""

    item: FeedbackItem


@dataclass(frozen=True, slots=True)
class FeedbackStoredHook:
    """Feedback was committed by the store."""

    item: FeedbackItem

    @property
    def feedback_id(self) -> str:
        """The stored item's id."""
        return self.item.id


@dataclass(frozen=True, slots=True)
class FeedbackSubmittedEvent:
    """Domain event: feedback was submitted and persisted (for event-bus subscribers)."""

    feedback_id: str
    item_type: str
    occurred_at: datetime = field(default_factory=utc_now)


HookPayload: TypeAlias = (
    FeedbackSubmittedHook | FeedbackProcessedHook | FeedbackStoredHook | FeedbackSubmittedEvent
)
P = TypeVar("P", FeedbackSubmittedHook, FeedbackProcessedHook, FeedbackStoredHook,
            FeedbackSubmittedEvent)
Observer: TypeAlias = Callable[[P], Awaitable[None] | None]


# chaining


async def _call(hook: WrappingHook, item: FeedbackItem, call_next: NextHook) -> HookResult:
    outcome = hook(item, call_next)
    if inspect.isawaitable(outcome):
        outcome = await outcome
    return outcome


async def run_wrappers(
    wrappers: list[WrappingHook] | tuple[WrappingHook, ...],
    item: FeedbackItem,
    final: NextHook,
) -> HookResult:
    """Pass ``item`` through ``wrappers`` in order, then to ``final`` (normally: save it).

    ``final`` runs at most once, whatever the wrappers do. A wrapper that raises
    ``FeedbackError`` rejects the item with it. Any other exception is logged; if the item
    was already stored by then the stored item is returned (it is never lost), else the
    result is ``Err(FeedbackProcessingError)``. A wrapper that answers ``Ok`` without the
    item having reached ``final`` gets ``Err(FeedbackProcessingError)`` too: nothing was
    stored, so nothing may claim success.
    """
    reached: list[HookResult] = []

    async def final_once(current: FeedbackItem) -> HookResult:
        if not reached:
            reached.append(await final(current))
        return reached[0]

    def step(index: int) -> NextHook:
        if index == len(wrappers):
            return final_once
        hook = wrappers[index]

        async def call(current: FeedbackItem) -> HookResult:
            return await _call(hook, current, step(index + 1))

        return call

    try:
        outcome = await step(0)(item)
    except FeedbackError as error:
        outcome = Err(error)
    except Exception as error:
        logger.exception("feedback wrapping hook raised %s", type(error).__name__)
        if reached and reached[0].is_ok():
            return reached[0]
        return Err(FeedbackProcessingError(f"a feedback hook failed: {type(error).__name__}"))
    if reached and reached[0].is_ok():
        # the item is committed: report it as stored whatever an outer wrapper answered
        return reached[0]
    if isinstance(outcome, Ok):
        return Err(FeedbackProcessingError("a feedback hook returned Ok without calling next"))
    if isinstance(outcome, Err) and isinstance(outcome.error, FeedbackError):
        return outcome
    return Err(FeedbackProcessingError("a feedback hook returned something other than a Result"))


def combine_hooks(*hooks: WrappingHook) -> WrappingHook:
    """One wrapping hook that runs ``hooks`` in order, each wrapping the ones after it."""
    chain = tuple(hooks)

    async def combined(item: FeedbackItem, call_next: NextHook) -> HookResult:
        async def inner(current: FeedbackItem) -> HookResult:
            return await call_next(current)

        def step(index: int) -> NextHook:
            if index == len(chain):
                return inner

            async def call(current: FeedbackItem) -> HookResult:
                return await _call(chain[index], current, step(index + 1))

            return call

        return await step(0)(item)

    return combined


class FeedbackHooks:
    """The hook registry a collector runs (``kit.hooks``)."""

    def __init__(self) -> None:
        self._observers: dict[type[Any], list[Callable[[Any], Awaitable[None] | None]]] = {}
        self._wrappers: list[WrappingHook] = []
        self.observer_errors = 0
        """How many observer calls raised (each one is logged)."""
        self.quiet = self._plain()
        """True while no observer and no wrapping hook is registered: the collector then
        skips the hook machinery (payloads, chain) altogether; it behaves the same."""

    def _plain(self) -> bool:
        # a subclass with its own emit/run always gets the full path
        cls = type(self)
        return cls.emit is FeedbackHooks.emit and cls.run is FeedbackHooks.run

    def _refresh_quiet(self) -> None:
        self.quiet = (
            self._plain()
            and not self._wrappers
            and not any(self._observers.values())
        )

    def subscribe(self, hook_type: type[P], fn: Observer[P]) -> Callable[[], None]:
        """Call ``fn(payload)`` for every payload of ``hook_type``; returns an unsubscribe."""
        if hook_type not in _PAYLOAD_TYPES:
            raise TypeError(f"cannot subscribe to {hook_type!r}: not a feedback hook type")
        observers = self._observers.setdefault(hook_type, [])
        observers.append(fn)
        self.quiet = False

        def unsubscribe() -> None:
            if fn in observers:
                observers.remove(fn)
                self._refresh_quiet()

        return unsubscribe

    def add_wrapper(self, fn: WrappingHook) -> WrappingHook:
        """Add a wrapping hook after those already added; returns ``fn`` (usable as decorator)."""
        self._wrappers.append(fn)
        self.quiet = False
        return fn

    @property
    def wrappers(self) -> tuple[WrappingHook, ...]:
        """The wrapping hooks, in the order they run."""
        return tuple(self._wrappers)

    async def emit(self, payload: HookPayload) -> None:
        """Call every observer of ``type(payload)``; a failing one is logged and skipped."""
        for fn in list(self._observers.get(type(payload), ())):
            try:
                outcome = fn(payload)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                self.observer_errors += 1
                logger.exception(
                    "feedback hook observer %r failed on %s",
                    getattr(fn, "__qualname__", fn),
                    type(payload).__name__,
                )

    async def run(
        self,
        item: FeedbackItem,
        final: NextHook,
        *,
        before: tuple[WrappingHook, ...] = (),
    ) -> HookResult:
        """Run ``before`` then the registered wrappers around ``final`` (see :func:`run_wrappers`)."""
        return await run_wrappers((*before, *self._wrappers), item, final)


_PAYLOAD_TYPES: frozenset[type[Any]] = frozenset(
    {FeedbackSubmittedHook, FeedbackProcessedHook, FeedbackStoredHook, FeedbackSubmittedEvent}
)


# ready-made hooks


def negative_without_comment(item: FeedbackItem, lowest_rating: float) -> bool:
    """Whether ``item`` is a thumbs-down or a rating at or below ``lowest_rating`` with no comment."""
    if item.comment is not None and item.comment.strip():
        return False
    value: object = item.value
    if item.feedback_type == FeedbackType.THUMBS:
        return value == -1
    if item.feedback_type == FeedbackType.RATING and isinstance(value, int | float):
        return not isinstance(value, bool) and value <= lowest_rating
    return False


def require_comment_for_negative(
    config: FeedbackConfig | None = None, *, lowest_rating: float | None = None
) -> WrappingHook:
    """A wrapping hook rejecting negative feedback (thumbs down, lowest rating) with no comment.

    ``lowest_rating`` defaults to ``config.rating_min`` (1.0 without a config). The error
    names the field ``comment``.
    """
    if lowest_rating is None:
        lowest_rating = config.rating_min if config is not None else 1.0
    threshold = lowest_rating

    async def require_comment(item: FeedbackItem, call_next: NextHook) -> HookResult:
        if negative_without_comment(item, threshold):
            return Err(
                FeedbackValidationError.for_field(
                    "comment", "is required with negative feedback; say what went wrong"
                )
            )
        return await call_next(item)

    return require_comment


_AUDIT_CONTEXT_KEYS = ("trace_id", "session_id", "user_id", "model", "provider", "intent",
                       "project", "endpoint")


def audit_record(item: FeedbackItem) -> dict[str, Any]:
    """The audit fields of ``item``: ids and correlation keys, never input/output bodies."""
    record: dict[str, Any] = {
        "feedback_id": item.id,
        "feedback_type": str(item.feedback_type),
        "created_at": item.created_at.isoformat(),
        "supersedes": item.supersedes,
        "tombstone": item.tombstone,
        "has_comment": item.comment is not None,
    }
    if item.feedback_type in (FeedbackType.RATING, FeedbackType.THUMBS):
        record["value"] = item.value
    for key in _AUDIT_CONTEXT_KEYS:
        value = item.context.get(key)
        if value is not None:
            record[key] = value
    return record


def audit_log_hook(
    logger: logging.Logger | None = None, *, level: int = logging.INFO
) -> WrappingHook:
    """A wrapping hook that logs one structured record per stored item.

    The record's message names the id and kind; ``record.feedback_audit`` holds the dict of
    :func:`audit_record` (ids, kind, correlation keys, numeric value; no bodies, no text).
    """
    audit_logger = logger if logger is not None else logging.getLogger("feedback_asgi.audit")

    async def audit(item: FeedbackItem, call_next: NextHook) -> HookResult:
        outcome = await call_next(item)
        if isinstance(outcome, Ok):
            stored = outcome.value
            audit_logger.log(
                level,
                "feedback stored id=%s type=%s",
                stored.id,
                stored.feedback_type,
                extra={"feedback_audit": audit_record(stored)},
            )
        return outcome

    return audit
