"""Rows of the ``ai_feedback`` table as plain dicts and tuples, without SQLAlchemy.

The conversions both SQL stores share: the SQLAlchemy store (through
:mod:`feedback_asgi.storage.sql.schema`, which re-exports them) and the Django store, which
imports them from here so a Django project never loads SQLAlchemy (tens of thousands of
objects every full garbage collection would walk in each worker).
"""

from __future__ import annotations

from typing import Any

from feedback_asgi.core.exceptions import FeedbackValidationError
from feedback_asgi.core.records import CORRELATION_KEYS, FeedbackItem, FeedbackType

__all__ = ["CORRELATION_LENGTH", "ID_LENGTH", "item_to_row", "row_to_item"]

ID_LENGTH = 128
"""Longest item id a SQL store accepts (uuid4 ids have 36 characters)."""
CORRELATION_LENGTH = 255
"""Longest ``trace_id``/``session_id``/... value a SQL store indexes."""


def _correlation(item: FeedbackItem, key: str) -> str | None:
    value = item.context.get(key)
    if not isinstance(value, str):
        return None  # only strings are matched, as in every other store
    if len(value) > CORRELATION_LENGTH:
        raise FeedbackValidationError.for_field(
            f"context.{key}", f"longer than {CORRELATION_LENGTH} characters"
        )
    return value


def item_to_row(item: FeedbackItem, *, root_id: str, is_live: bool) -> dict[str, Any]:
    """The insert parameters for ``item``; raises ``FeedbackValidationError`` if it cannot fit."""
    if len(item.id) > ID_LENGTH:
        raise FeedbackValidationError.for_field("id", f"longer than {ID_LENGTH} characters")
    kind = str(item.feedback_type)
    value = item.value
    rating = None
    if kind == FeedbackType.RATING and isinstance(value, int | float):
        rating = float(value)
    thumbs = None
    if kind == FeedbackType.THUMBS and (value == 1 or value == -1):
        thumbs = 1 if value == 1 else -1
    row: dict[str, Any] = {
        "id": item.id,
        "kind": kind,
        "created_at": item.created_at,
        "rating": rating,
        "thumbs": thumbs,
        "supersedes": item.supersedes,
        "tombstone": item.tombstone,
        "is_live": is_live,
        "root_id": root_id,
        "value": value,
        "context": item.context,
        "meta": item.metadata,
    }
    for key in CORRELATION_KEYS:
        row[key] = _correlation(item, key)
    return row


_KINDS: dict[str, FeedbackType] = {kind.value: kind for kind in FeedbackType}
_new_item = object.__new__
_set = object.__setattr__


def row_to_item(row: Any) -> FeedbackItem:
    """Rebuild an item from a row of ``ITEM_COLUMNS`` (values were validated on save):
    id, kind, value, context, meta, created_at, supersedes, tombstone."""
    item: FeedbackItem = _new_item(FeedbackItem)
    _set(item, "feedback_type", _KINDS.get(row[1], row[1]))
    _set(item, "value", row[2])
    _set(item, "context", row[3] if row[3] is not None else {})
    _set(item, "metadata", row[4] if row[4] is not None else {})
    _set(item, "id", row[0])
    _set(item, "created_at", row[5])
    _set(item, "supersedes", row[6])
    _set(item, "tombstone", bool(row[7]))
    return item
