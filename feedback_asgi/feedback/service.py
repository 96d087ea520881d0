"""``FeedbackService``: trace-correlated ratings and aggregate statistics (the seed's protocol)."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.core.exceptions import FeedbackValidationError
from feedback_asgi.core.records import FeedbackType
from feedback_asgi.core.result import Err
from feedback_asgi.feedback.collector import FeedbackCollector
from feedback_asgi.storage.base import FeedbackStoreProtocol

__all__ = ["LIFTED_KEYS", "FeedbackService"]

logger = logging.getLogger(__name__)

LIFTED_KEYS: tuple[str, ...] = ("model", "provider", "session_id", "user_id", "intent", "project")
"""Keys of ``submit_feedback``'s ``metadata`` that move into the item's context."""

_CALLER_FIELDS = {
    "value": "score",
    "context.trace_id": "trace_id",
    **{f"context.{key}": f"metadata.{key}" for key in LIFTED_KEYS},
}


class FeedbackService:
    """Submit ratings on traced AI generations and read statistics over them.

    Shares its store with a :class:`FeedbackCollector` (given, or built here), so ratings go
    through the same processors and hooks as every other path. With neither ``store`` nor
    ``collector`` the items live in memory, and the service says so once in the log.
    """

    def __init__(
        self,
        store: FeedbackStoreProtocol | None = None,
        *,
        collector: FeedbackCollector | None = None,
        config: FeedbackConfig | None = None,
    ) -> None:
        if collector is not None:
            if store is not None and store is not collector.storage:
                raise ValueError("pass either a store or a collector using that store")
        else:
            if store is None:
                logger.warning(
                    "FeedbackService has no store: feedback is kept in memory only and is "
                    "lost when the process exits"
                )
            collector = FeedbackCollector(store, config=config)
        self.collector = collector

    @property
    def config(self) -> FeedbackConfig:
        """The configuration in force (the collector's)."""
        return self.collector.config

    @property
    def store(self) -> FeedbackStoreProtocol:
        """The store ratings go to; assigning it rewires the collector too."""
        return self.collector.storage

    @store.setter
    def store(self, store: FeedbackStoreProtocol) -> None:
        self.collector.storage = store

    async def submit_feedback(
        self,
        trace_id: str,
        score: float,
        comment: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Record a rating of ``score`` on the generation ``trace_id``.

        ``score`` must lie in the configured range (``rating_min``..``rating_max``, default
        1-5). ``model``, ``provider``, ``session_id``, ``user_id``, ``intent`` and ``project``
        found in ``metadata`` go into the item's context next to ``trace_id``; the rest stays
        in its metadata. Raises ``FeedbackValidationError`` naming the field (``trace_id``,
        ``score``, ``comment``, ``metadata``, ``context.model``, ...) and
        ``StorageUnavailableError`` when the store is down.
        """
        if not isinstance(trace_id, str) or not trace_id.strip():
            raise FeedbackValidationError.for_field("trace_id", "must be a non-empty string")
        if metadata is None:
            metadata = {}
        if not isinstance(metadata, Mapping):
            raise FeedbackValidationError.for_field(
                "metadata", f"must be an object, not {type(metadata).__name__}"
            )
        rest = dict(metadata)
        context: dict[str, Any] = {"trace_id": trace_id}
        for key in LIFTED_KEYS:
            if rest.get(key) is not None:
                context[key] = rest.pop(key)
        if comment is None:
            comment = rest.pop("comment", None)
        result = await self.collector.collect(
            FeedbackType.RATING, score, context, rest, comment=comment
        )
        if isinstance(result, Err):
            error = result.error
            if isinstance(error, FeedbackValidationError):
                # name the fields as the caller knows them
                renamed = {_CALLER_FIELDS.get(name, name): p for name, p in error.fields.items()}
                if renamed != error.fields:
                    first = next(iter(renamed.items()))
                    raise FeedbackValidationError(f"{first[0]}: {first[1]}", renamed) from None
            raise error

    async def get_feedback_stats(
        self,
        model: str | None = None,
        provider: str | None = None,
        window_hours: float = 24,
    ) -> dict[str, Any]:
        """Figures over the live feedback of the last ``window_hours`` hours.

        ``model`` and ``provider`` filter on the items' context and are echoed in the answer.
        Computed by :func:`feedback_asgi.analytics.feedback_stats` (in the database).
        Keys: ``total_count``, ``average_rating`` (``None`` without ratings), ``by_type``,
        ``thumbs_up``, ``thumbs_down``, ``thumbs_up_rate`` (``None`` without votes),
        ``window_hours``, and ``model``/``provider`` when given.
        """
        for name, value in (("model", model), ("provider", provider)):
            if value is not None and (not isinstance(value, str) or not value):
                raise FeedbackValidationError.for_field(name, "must be a non-empty string")
        if (
            isinstance(window_hours, bool)
            or not isinstance(window_hours, int | float)
            or not math.isfinite(window_hours)
            or window_hours <= 0
        ):
            raise FeedbackValidationError.for_field("window_hours", "must be a positive number")
        from feedback_asgi.analytics import feedback_stats

        report = await feedback_stats(
            self.store, window=timedelta(hours=window_hours), model=model, provider=provider
        )
        summary = report.groups[0]
        stats: dict[str, Any] = {
            "total_count": summary.total_count,
            "average_rating": summary.average_rating,
            "by_type": dict(summary.count_by_type),
            "thumbs_up": summary.thumbs_up,
            "thumbs_down": summary.thumbs_down,
            "thumbs_up_rate": summary.thumbs_up_rate,
            "window_hours": window_hours,
        }
        if model is not None:
            stats["model"] = model
        if provider is not None:
            stats["provider"] = provider
        return stats
