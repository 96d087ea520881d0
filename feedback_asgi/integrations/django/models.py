"""``AiFeedback``: the ``ai_feedback`` table as a Django model.

The same table, columns and semantics as :mod:`feedback_asgi.storage.sql.schema` (the
SQLAlchemy store's schema), so both stores read each other's rows: typed columns for
everything a query filters on, the item's own content as JSON. Rows are append-only:
nothing but ``is_live`` ever changes after insertion, and it is cleared in the
transaction that saves the row's successor. Write through
:class:`~feedback_asgi.integrations.django.store.DjangoFeedbackStore`, never ``.save()``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import models

if TYPE_CHECKING:
    from feedback_asgi.core.records import FeedbackItem

    _Correlation = models.CharField[str | None, str | None]

__all__ = ["ITEM_FIELDS", "AiFeedback"]

# The lengths of feedback_asgi.storage.sql.schema (ID_LENGTH, CORRELATION_LENGTH), spelled
# out so that loading the models does not import SQLAlchemy; a test keeps them equal.
ID_LENGTH = 128
CORRELATION_LENGTH = 255

ITEM_FIELDS = ("id", "kind", "value", "context", "meta", "created_at", "supersedes", "tombstone")
"""The fields ``row_to_item`` needs, in its order."""


def _correlation(verbose_name: str) -> _Correlation:
    return models.CharField(verbose_name, max_length=CORRELATION_LENGTH, null=True, blank=True)


class AiFeedback(models.Model):
    """One version of one feedback item (``supersedes`` links versions into a chain)."""

    id: models.CharField[str, str] = models.CharField(primary_key=True, max_length=ID_LENGTH)
    kind: models.CharField[str, str] = models.CharField("type", max_length=32)
    created_at: models.DateTimeField[datetime, datetime] = models.DateTimeField("created")
    trace_id: _Correlation = _correlation("trace id")
    session_id: _Correlation = _correlation("session id")
    user_id: _Correlation = _correlation("user id")
    model: _Correlation = _correlation("model")
    provider: _Correlation = _correlation("provider")
    intent: _Correlation = _correlation("intent")
    project: _Correlation = _correlation("project")
    endpoint: _Correlation = _correlation("endpoint")
    rating: models.FloatField[float | None, float | None] = models.FloatField(null=True, blank=True)
    thumbs: models.SmallIntegerField[int | None, int | None] = models.SmallIntegerField(
        null=True, blank=True, choices=[(1, "up"), (-1, "down")]
    )
    supersedes: models.CharField[str | None, str | None] = models.CharField(max_length=ID_LENGTH, null=True, blank=True)
    tombstone: models.BooleanField[bool, bool] = models.BooleanField(default=False)
    is_live: models.BooleanField[bool, bool] = models.BooleanField("live", default=True)
    root_id: models.CharField[str, str] = models.CharField(max_length=ID_LENGTH)
    value: models.JSONField[Any, Any] = models.JSONField(null=True, blank=True)
    context: models.JSONField[Any, Any] = models.JSONField(default=dict)
    meta: models.JSONField[Any, Any] = models.JSONField("metadata", db_column="metadata", default=dict)
    request_id: _Correlation = _correlation("request id")
    otel_trace_id: _Correlation = _correlation("OpenTelemetry trace id")

    class Meta:
        db_table = "ai_feedback"
        verbose_name = "AI feedback"
        verbose_name_plural = "AI feedback"
        ordering = ("-created_at", "-id")
        constraints = (
            models.UniqueConstraint(fields=["supersedes"], name="uq_ai_feedback_supersedes"),
        )
        indexes = (
            models.Index(fields=["created_at", "id"], name="ix_ai_feedback_created_at"),
            models.Index(fields=["session_id", "created_at", "id"], name="ix_ai_feedback_session_id"),
            models.Index(fields=["trace_id", "created_at", "id"], name="ix_ai_feedback_trace_id"),
            models.Index(fields=["kind", "created_at", "id"], name="ix_ai_feedback_kind"),
            models.Index(fields=["model", "created_at", "id"], name="ix_ai_feedback_model"),
            models.Index(fields=["user_id", "created_at", "id"], name="ix_ai_feedback_user_id"),
            models.Index(fields=["request_id", "created_at", "id"],
                         name="ix_ai_feedback_request_id"),
            models.Index(fields=["otel_trace_id", "created_at", "id"],
                         name="ix_ai_feedback_otel_trace_id"),
            models.Index(fields=["root_id"], name="ix_ai_feedback_root_id"),
            models.Index(
                fields=["created_at"],
                name="ix_ai_feedback_live_window",
                condition=models.Q(is_live=True),
            ),
        )

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"

    @property
    def comment(self) -> str | None:
        """The comment sent with the feedback, if any."""
        value = (self.meta or {}).get("comment")
        return value if isinstance(value, str) else None

    @property
    def rated_input(self) -> Any:
        """The input of the rated exchange (``context["input"]``)."""
        return (self.context or {}).get("input")

    @property
    def rated_output(self) -> Any:
        """The output of the rated exchange (``context["output"]``)."""
        return (self.context or {}).get("output")

    def to_item(self) -> FeedbackItem:
        """This row as a :class:`~feedback_asgi.core.records.FeedbackItem`."""
        from feedback_asgi.core.records import FeedbackItem

        return FeedbackItem.from_dict(
            {
                "id": self.id,
                "feedback_type": self.kind,
                "value": self.value,
                "context": self.context,
                "metadata": self.meta,
                "created_at": self.created_at,
                "supersedes": self.supersedes,
                "tombstone": self.tombstone,
            }
        )

    def to_json(self) -> str:
        """One JSONL line: :meth:`FeedbackItem.to_dict` of this row."""
        return json.dumps(self.to_item().to_dict(), ensure_ascii=False, default=str)
