"""The storage protocols every backend implements, and the helpers they share.

Semantics every backend follows (the conformance suite in
``feedback_asgi.testing.conformance`` checks them):

* Rows are append-only. An item with ``supersedes=X`` is the next version of X; with
  ``tombstone=True`` as well it retracts X. A version can be superseded once: saving a
  second successor of X fails with ``Err(FeedbackValidationError)`` on field
  ``supersedes``, as does naming an item that does not exist.
* An item is *live* when nothing supersedes it and it is not a tombstone. Reads
  (``find_*``, ``query``, ``aggregate``, ``iter_items``) see live items only, unless
  ``include_history=True`` asks for every row (superseded versions and tombstones too).
  ``get(id)`` returns the row with that id whatever its state; ``history(id)`` returns the
  whole chain the row belongs to, oldest first.
* "Newest first" orders by ``created_at`` descending, then ``id`` descending.
* Time windows include their start and exclude their end: ``since <= created_at < until``.
* ``save``/``save_many`` return ``Ok`` only once the items are durable, and never raise:
  an unreachable backend gives ``Err(StorageUnavailableError)``. Reads raise
  ``StorageUnavailableError`` when the backend cannot be reached.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from feedback_asgi.exceptions import FeedbackError, FeedbackValidationError
from feedback_asgi.result import Result
from feedback_asgi.types import Exchange, FeedbackItem, FeedbackKind, FeedbackSummary, utc_now

__all__ = [
    "ExchangeStoreProtocol",
    "FeedbackStoreProtocol",
    "Page",
    "decode_cursor",
    "encode_cursor",
    "window_bounds",
]


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a keyset-paginated query; pass ``next_cursor`` back for the next one."""

    items: list[FeedbackItem]
    next_cursor: str | None

    @classmethod
    def from_rows(cls, found: list[FeedbackItem], limit: int) -> Page:
        """The page of ``found`` (fetched with ``limit + 1`` rows, newest first): its first
        ``limit`` items, with a cursor only when the extra row shows there is more."""
        page = found[:limit]
        more = len(found) > limit
        return cls(page, encode_cursor(page[-1]) if more and page else None)


@runtime_checkable
class FeedbackStoreProtocol(Protocol):
    """Durable storage of feedback items. All methods are safe in a request handler."""

    async def save(self, item: FeedbackItem) -> Result[str, FeedbackError]:
        """Store one item; ``Ok(item.id)`` once committed, ``Err`` (never a raise) on failure."""
        ...

    async def save_many(self, items: Sequence[FeedbackItem]) -> Result[list[str], FeedbackError]:
        """Store several items in one transaction: all of them or none."""
        ...

    async def get(self, feedback_id: str) -> FeedbackItem | None:
        """The row with this id, live or not; ``None`` if there is none."""
        ...

    async def history(self, feedback_id: str) -> list[FeedbackItem]:
        """Every version in the chain that contains ``feedback_id``, oldest first."""
        ...

    async def find_by_session(
        self, session_id: str, *, include_history: bool = False
    ) -> list[FeedbackItem]:
        """Items whose context has this ``session_id``, newest first."""
        ...

    async def find_by_trace(
        self, trace_id: str, *, include_history: bool = False
    ) -> list[FeedbackItem]:
        """Items whose context has this ``trace_id``, newest first."""
        ...

    async def find_by_type(
        self, feedback_type: FeedbackKind, *, limit: int = 100, include_history: bool = False
    ) -> list[FeedbackItem]:
        """Items of one kind, newest first, at most ``limit``."""
        ...

    async def query(
        self,
        *,
        type: FeedbackKind | None = None,
        model: str | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        trace_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
        include_history: bool = False,
    ) -> Page:
        """Filtered items, newest first, keyset-paginated (stable under concurrent inserts)."""
        ...

    async def aggregate(
        self,
        *,
        window_hours: float = 24,
        model: str | None = None,
        provider: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> FeedbackSummary:
        """Figures over live items in the window (``since``/``until`` override it)."""
        ...

    def iter_items(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        batch_size: int = 1000,
        include_history: bool = False,
    ) -> AsyncIterator[FeedbackItem]:
        """Every matching item, oldest first (``created_at``, then ``id``), in constant memory."""
        ...

    async def ping(self) -> float:
        """Round-trip to the backend in milliseconds; raises ``StorageUnavailableError``."""
        ...

    async def close(self) -> None:
        """Release connections; the store may not be used afterwards."""
        ...


@runtime_checkable
class ExchangeStoreProtocol(Protocol):
    """Short-lived storage of captured exchanges, keyed by trace id."""

    async def put(self, exchange: Exchange, ttl: float | None = None) -> bool | None:
        """Keep ``exchange`` for ``ttl`` seconds (the store's default when ``None``).

        A store that reports failure instead of raising answers ``False`` when it could
        not keep the exchange (the exchange writer then retries); ``None`` or ``True``
        means kept.
        """
        ...

    async def get(self, trace_id: str) -> Exchange | None:
        """The exchange captured under ``trace_id``, or ``None`` (unknown or expired)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def window_bounds(
    window_hours: float, since: datetime | None, until: datetime | None
) -> tuple[datetime, datetime | None]:
    """The ``[since, until)`` bounds of an aggregate: explicit bounds win over the window."""
    if since is None:
        since = (until or utc_now()) - timedelta(hours=window_hours)
    return since, until


def encode_cursor(item: FeedbackItem) -> str:
    """An opaque cursor that resumes a newest-first listing just after ``item``."""
    raw = json.dumps([item.created_at.isoformat(), item.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The ``(created_at, id)`` position of a cursor; a bad one is a validation error."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, item_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        moment = datetime.fromisoformat(created)
        if moment.tzinfo is None or not isinstance(item_id, str):
            raise ValueError(cursor)
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError, UnicodeError):
        raise FeedbackValidationError.for_field("cursor", "not a cursor this API issued") from None
    return moment, item_id
