"""``FeedbackCollector``: turns submitted feedback into stored ``FeedbackItem`` s.

Every path (the seed's ``collect_*`` methods, :meth:`FeedbackCollector.collect` used by the
HTTP endpoint) runs the same pipeline: ``FeedbackSubmittedHook`` -> the processor registry
-> redaction of secrets -> wrapping hooks -> ``FeedbackProcessedHook`` -> ``store.save`` ->
``FeedbackStoredHook`` and ``FeedbackSubmittedEvent``. ``collect`` answers with a ``Result`` and never raises for bad
input or a failing store; the ``collect_*`` methods raise ``FeedbackValidationError`` and
``StorageUnavailableError`` instead.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from feedback_asgi.capture.redaction import Redactor, config_redactor
from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.core.exceptions import (
    FeedbackError,
    FeedbackValidationError,
    StorageUnavailableError,
)
from feedback_asgi.core.records import (
    CORRELATION_KEYS,
    FeedbackItem,
    FeedbackKind,
    FeedbackType,
    normalize_kind,
)
from feedback_asgi.core.result import Err, Ok, Result
from feedback_asgi.feedback.hooks import (
    FeedbackHooks,
    FeedbackProcessedHook,
    FeedbackStoredHook,
    FeedbackSubmittedEvent,
    FeedbackSubmittedHook,
    HookResult,
    WrappingHook,
    require_comment_for_negative,
)
from feedback_asgi.feedback.processors import (
    FeedbackProcessorRegistry,
    json_problem,
    normalize_comment,
    string_problem,
)
from feedback_asgi.storage.base import FeedbackStoreProtocol
from feedback_asgi.storage.memory import MemoryFeedbackStore

__all__ = ["MAX_CORRELATION_LENGTH", "FeedbackCollector"]

logger = logging.getLogger(__name__)

MAX_CORRELATION_LENGTH = 255
"""Longest accepted correlation value (``trace_id``, ``session_id``, ``model``, ...)."""

_PAGE = 500


def _plain_dict(value: object, name: str) -> dict[str, Any]:
    """A JSON-compatible copy of a caller's ``context``/``metadata`` mapping."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise FeedbackValidationError.for_field(
            name, f"must be an object, not {type(value).__name__}"
        )
    copied = dict(value)
    problem = json_problem(copied)
    if problem is not None:
        raise FeedbackValidationError.for_field(name, problem)
    return copied


def check_context(context: object) -> dict[str, Any]:
    """A validated copy of a context: JSON-compatible, correlation keys short strings.

    Raises ``FeedbackValidationError`` naming the field (``context.trace_id``, ...).
    """
    copied = _plain_dict(context, "context")
    for key in CORRELATION_KEYS:
        value = copied.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value:
            raise FeedbackValidationError.for_field(f"context.{key}", "must be a non-empty string")
        if len(value) > MAX_CORRELATION_LENGTH:
            raise FeedbackValidationError.for_field(
                f"context.{key}", f"must be at most {MAX_CORRELATION_LENGTH} characters"
            )
    return copied


def _check_id(item_id: object) -> str:
    if (
        not isinstance(item_id, str)
        or not item_id
        or len(item_id) > MAX_CORRELATION_LENGTH
        or string_problem(item_id) is not None
    ):
        raise FeedbackValidationError.for_field(
            "id", f"must be a non-empty string of at most {MAX_CORRELATION_LENGTH} characters"
        )
    return item_id


class FeedbackCollector:
    """Collects feedback of every kind and stores it.

    ``storage`` is public and may be reassigned (an app may wire its store late); without
    one the collector keeps items in a bounded :class:`MemoryFeedbackStore`. ``registry``
    defaults to the built-in processors, ``hooks`` to an empty :class:`FeedbackHooks`,
    ``config`` to the registry's (else ``FeedbackConfig()``, read from the environment).
    """

    def __init__(
        self,
        storage: FeedbackStoreProtocol | None = None,
        *,
        registry: FeedbackProcessorRegistry | None = None,
        hooks: FeedbackHooks | None = None,
        config: FeedbackConfig | None = None,
    ) -> None:
        if config is None:
            config = registry.config if registry is not None else FeedbackConfig()
        self.config = config
        self.registry = (
            registry if registry is not None else FeedbackProcessorRegistry.with_defaults(config)
        )
        self.hooks = hooks if hooks is not None else FeedbackHooks()
        self.storage: FeedbackStoreProtocol = (
            storage if storage is not None else MemoryFeedbackStore()
        )
        self._builtin_wrappers: tuple[WrappingHook, ...] = (
            (require_comment_for_negative(config),) if config.require_comment_for_negative else ()
        )
        self._redactor_of: tuple[FeedbackConfig, Redactor] = (config, config_redactor(config))

    # the generic path

    async def collect(
        self,
        kind: FeedbackKind,
        value: Any,
        context: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        comment: str | None = None,
        supersedes: str | None = None,
        tombstone: bool = False,
        item_id: str | None = None,
    ) -> Result[FeedbackItem, FeedbackError]:
        """Validate, run the hooks and store one item; the stored item or the reason why not.

        The comment is ``comment`` if given, else ``metadata["comment"]``; it is stored,
        stripped, in ``metadata["comment"]``. ``context`` and ``metadata`` are copied, never
        mutated. Secrets in the value, the comment and the metadata are redacted (see
        :class:`~feedback_asgi.capture.redaction.Redactor`) before the item is built, so hooks and
        the store see them redacted. ``supersedes=<id>`` makes this the next version of
        that item (same kind; its context is inherited when ``context`` is ``None``); with
        ``tombstone=True`` it retracts the item instead (``value`` must be ``None``).
        ``item_id`` sets the new item's id (for idempotent writes); by default a fresh UUID4.

        Never raises for bad input or a failing store: ``Err(FeedbackValidationError)``
        names the field, ``Err(StorageUnavailableError)`` means the store is down,
        ``Err(FeedbackProcessingError)`` means a hook failed.
        """
        hooks = self.hooks
        if not hooks.quiet:
            await hooks.emit(
                FeedbackSubmittedHook(
                    feedback_type=str(kind),
                    value=value,
                    context=dict(context) if isinstance(context, Mapping) else {},
                    metadata=dict(metadata) if isinstance(metadata, Mapping) else {},
                )
            )
        try:
            item = await self._build(
                kind, value, context, metadata, comment, supersedes, tombstone, item_id
            )
        except FeedbackError as error:
            return Err(error)
        if hooks.quiet and not self._builtin_wrappers:
            # no hook to run: the chain would only call the final step (same result)
            return await self._store(item)
        return await hooks.run(item, self._store, before=self._builtin_wrappers)

    async def _build(
        self,
        kind: object,
        value: object,
        context: object,
        metadata: object,
        comment: object,
        supersedes: object,
        tombstone: object,
        item_id: object = None,
    ) -> FeedbackItem:
        """The item to store; raises ``FeedbackError`` on bad input or an unreadable store."""
        meta = _plain_dict(metadata, "metadata")
        if comment is None:
            comment = meta.pop("comment", None)
        meta.pop("comment", None)
        if not isinstance(tombstone, bool):
            raise FeedbackValidationError.for_field("tombstone", "must be true or false")
        if supersedes is not None and (not isinstance(supersedes, str) or not supersedes):
            raise FeedbackValidationError.for_field(
                "supersedes", "must be the id of an earlier feedback item"
            )
        if tombstone:
            if supersedes is None:
                raise FeedbackValidationError.for_field(
                    "supersedes", "is required to retract an item"
                )
            if value is not None:
                raise FeedbackValidationError.for_field(
                    "value", "must be null when retracting an item"
                )
            kind = self._known_kind(kind)
            clean_comment = normalize_comment(comment, self.config).unwrap()
            if clean_comment is not None:
                meta["comment"] = clean_comment
        else:
            processed = self.registry.process(kind, {"value": value, "comment": comment}).unwrap()
            kind, value = processed.kind, processed.value
            meta.update(processed.metadata)
        value, meta = self._redacted(value, meta)
        if supersedes is not None:
            prior = await self._prior(supersedes, kind)
            if context is None:
                context = prior.context
        checked_context = check_context(context)
        if item_id is None:
            return FeedbackItem(
                feedback_type=kind,
                value=value,
                context=checked_context,
                metadata=meta,
                supersedes=supersedes,
                tombstone=tombstone,
            )
        return FeedbackItem(
            feedback_type=kind,
            value=value,
            context=checked_context,
            metadata=meta,
            id=_check_id(item_id),
            supersedes=supersedes,
            tombstone=tombstone,
        )

    def _redacted(self, value: Any, meta: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """``value`` and ``meta`` (comment included) with secrets redacted, as stored.

        A clean item (the usual case) is known clean from one search over its strings and
        keys and kept as it is, without a walk.
        """
        config, redactor = self._redactor_of
        if config is not self.config:  # ``config`` is public: follow a reassignment
            redactor = config_redactor(self.config)
            self._redactor_of = (self.config, redactor)
        if redactor.is_clean_value([value, meta]):
            return value, meta
        redacted: dict[str, Any] = redactor.redact_value(meta)
        return redactor.redact_value(value), redacted

    def _known_kind(self, kind: object) -> FeedbackKind:
        if isinstance(kind, str) and kind in self.registry:
            return normalize_kind(kind)
        known = ", ".join(str(k) for k in self.registry.kinds())
        raise FeedbackValidationError.for_field(
            "type", f"unknown feedback type; known types: {known}"
        )

    async def _prior(self, feedback_id: str, kind: FeedbackKind) -> FeedbackItem:
        try:
            prior = await self.storage.get(feedback_id)
        except FeedbackError:
            raise
        except Exception as error:
            logger.exception("feedback store failed to read item %s", feedback_id)
            raise StorageUnavailableError(
                f"feedback store failed: {type(error).__name__}"
            ) from error
        if prior is None:
            raise FeedbackValidationError.for_field(
                "supersedes", f"no feedback item {feedback_id[:64]!r}"
            )
        if prior.feedback_type != kind:
            raise FeedbackValidationError.for_field(
                "supersedes", f"names a {prior.feedback_type} item, not a {kind} item"
            )
        return prior

    async def _store(self, item: FeedbackItem) -> HookResult:
        """The innermost step of the hook chain: announce, save, announce."""
        hooks = self.hooks
        if not hooks.quiet:
            await hooks.emit(FeedbackProcessedHook(item))
        try:
            saved = await self.storage.save(item)
        except Exception as error:
            # stores must not raise; one that does is treated as unavailable
            logger.exception("feedback store raised on save")
            saved = Err(StorageUnavailableError(f"feedback store failed: {type(error).__name__}"))
        if isinstance(saved, Ok):
            if not hooks.quiet:
                await hooks.emit(FeedbackStoredHook(item))
                await hooks.emit(FeedbackSubmittedEvent(item.id, str(item.feedback_type)))
            return Ok(item)
        reported: object = saved.error if isinstance(saved, Err) else saved
        failure = (
            reported
            if isinstance(reported, FeedbackError)
            else StorageUnavailableError(f"feedback store failed: {reported!r}"[:200])
        )
        if isinstance(failure, StorageUnavailableError):
            logger.warning("feedback %s not stored: %s", item.id, failure)
        return Err(failure)

    async def _collect_id(
        self,
        kind: FeedbackKind,
        value: Any,
        context: Mapping[str, Any] | None,
        metadata: Mapping[str, Any] | None,
    ) -> str:
        match await self.collect(kind, value, context, metadata):
            case Ok(item):
                return item.id
            case Err(error):
                raise error
        raise AssertionError("unreachable")  # pragma: no cover

    # the seed API

    async def collect_rating(
        self,
        rating: float,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """Store a rating within the configured range; returns the feedback id.

        Raises ``FeedbackValidationError`` (bad input, field named) or
        ``StorageUnavailableError`` (the store is down); the same for every ``collect_*``.
        """
        return await self._collect_id(FeedbackType.RATING, rating, context, metadata)

    async def collect_text(
        self,
        text: str,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """Store a free-text comment; returns the feedback id."""
        return await self._collect_id(FeedbackType.TEXT, text, context, metadata)

    async def collect_correction(
        self,
        original: str,
        corrected: str,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """Store a correction of an output; returns the feedback id."""
        value = {"original": original, "corrected": corrected}
        return await self._collect_id(FeedbackType.CORRECTION, value, context, metadata)

    async def collect_label(
        self,
        label: Any,
        input_data: Any,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """Store a ground-truth label for an input; returns the feedback id."""
        value = {"label": label, "input": input_data}
        return await self._collect_id(FeedbackType.LABEL, value, context, metadata)

    async def collect_thumbs(
        self,
        up: bool | str | int | None,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """Store a thumbs vote (``True``/``"up"``/``1`` or ``False``/``"down"``/``-1``).

        ``None`` is a neutral vote and needs ``metadata["comment"]``.
        """
        return await self._collect_id(FeedbackType.THUMBS, up, context, metadata)

    # reads

    async def get_feedback(
        self, feedback_type: FeedbackKind | None = None, limit: int | None = None
    ) -> list[FeedbackItem]:
        """Live items, newest first, optionally of one kind; all of them when ``limit`` is None.

        Raises ``FeedbackValidationError`` for a bad kind or limit and
        ``StorageUnavailableError`` when the store cannot be read.
        """
        if feedback_type is not None and (
            not isinstance(feedback_type, str) or feedback_type not in self.registry
        ):
            known = ", ".join(str(k) for k in self.registry.kinds())
            raise FeedbackValidationError.for_field(
                "feedback_type", f"unknown feedback type; known types: {known}"
            )
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise FeedbackValidationError.for_field("limit", "must be a non-negative integer")
        items: list[FeedbackItem] = []
        cursor: str | None = None
        while limit is None or len(items) < limit:
            size = _PAGE if limit is None else min(_PAGE, limit - len(items))
            page = await self.storage.query(type=feedback_type, limit=size, cursor=cursor)
            items.extend(page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        return items

    async def get_feedback_dict(
        self, feedback_type: FeedbackKind | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """:meth:`get_feedback` as JSON-ready dicts (``FeedbackItem.to_dict``)."""
        return [item.to_dict() for item in await self.get_feedback(feedback_type, limit)]

    def clear(self) -> None:
        """Forget every item kept in memory; does nothing to a durable store."""
        if isinstance(self.storage, MemoryFeedbackStore):
            self.storage.clear()
