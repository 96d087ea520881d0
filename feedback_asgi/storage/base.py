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
  A time a store is asked about lies in ``[EARLIEST_TIME, LATEST_TIME]`` (:func:`check_time`),
  so window arithmetic never leaves what every backend represents.
* Ids and correlation values are 1 to :data:`MAX_KEY_LENGTH` characters of valid Unicode
  without NUL (:func:`key_problem`): anything else can never be stored, so never matches.
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
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from feedback_asgi.core.exceptions import FeedbackError, FeedbackValidationError
from feedback_asgi.core.records import (
    Exchange,
    FeedbackItem,
    FeedbackKind,
    FeedbackSummary,
    string_problem,
    utc_now,
)
from feedback_asgi.core.result import Result

__all__ = [
    "EARLIEST_TIME",
    "LATEST_TIME",
    "MAX_KEY_LENGTH",
    "ExchangeStoreProtocol",
    "FeedbackStoreProtocol",
    "Page",
    "RateDecision",
    "RemoteBuckets",
    "check_time",
    "decode_cursor",
    "encode_cursor",
    "key_problem",
    "window_bounds",
]

EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
"""The earliest ``since``/``until`` accepted anywhere (a 10-year window before it still
fits MariaDB's ``DATETIME``, which starts at year 1000)."""
LATEST_TIME = datetime(9999, 1, 1, tzinfo=UTC)
"""The latest ``since``/``until`` accepted anywhere (leaves a day's bucket, an hour's step
and any time zone offset inside year 9999, the last one every backend and Python hold)."""
MAX_KEY_LENGTH = 255
"""Longest id or correlation value (``trace_id``, ``session_id``, ``model``...) any store keeps."""
_TIME_RANGE = "must be from 1970-01-01 to 9999-01-01 (UTC)"


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
        request_id: str | None = None,
        otel_trace_id: str | None = None,
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


def check_time(name: str, moment: datetime) -> datetime:
    """``moment`` in UTC, when it lies in ``[EARLIEST_TIME, LATEST_TIME]``.

    The one check of every ``since``/``until`` (HTTP, CLI, Django): raises
    ``FeedbackValidationError`` on field ``name`` for a time without a time zone or
    outside the range, instead of an overflow in window arithmetic or a database error.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise FeedbackValidationError.for_field(name, "must include a time zone")
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:00-05:00 is past year 9999 in UTC
        raise FeedbackValidationError.for_field(name, _TIME_RANGE) from None
    if not EARLIEST_TIME <= utc <= LATEST_TIME:
        raise FeedbackValidationError.for_field(name, _TIME_RANGE)
    return utc


def key_problem(value: str) -> str | None:
    """Why ``value`` can never be a stored id or correlation value, or ``None`` if it can be.

    Stores keep 1 to :data:`MAX_KEY_LENGTH` characters of valid Unicode without NUL
    (PostgreSQL text cannot hold NUL; no database holds a lone surrogate).
    """
    if not value:
        return "must not be empty"
    if len(value) > MAX_KEY_LENGTH:
        return f"must be at most {MAX_KEY_LENGTH} characters"
    return string_problem(value)


def window_bounds(
    window_hours: float, since: datetime | None, until: datetime | None
) -> tuple[datetime, datetime | None]:
    """The ``[since, until)`` bounds of an aggregate: explicit bounds win over the window.

    Bounds go through :func:`check_time`; a window reaching before year 1 is a
    ``FeedbackValidationError`` on ``window_hours``.
    """
    if until is not None:
        until = check_time("until", until)
    if since is not None:
        return check_time("since", since), until
    try:
        start = (until or utc_now()) - timedelta(hours=window_hours)
    except (OverflowError, ValueError):
        raise FeedbackValidationError.for_field("window_hours", "too long") from None
    return start, until


def encode_cursor(item: FeedbackItem) -> str:
    """An opaque cursor that resumes a newest-first listing just after ``item``."""
    raw = json.dumps([item.created_at.isoformat(), item.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The ``(created_at, id)`` position of a cursor; a bad one is a validation error.

    Only what a store could have issued passes: a time :func:`check_time` accepts and an
    id :func:`key_problem` accepts (a forged cursor never reaches the database).
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, item_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        moment = check_time("cursor", datetime.fromisoformat(created))
        if not isinstance(item_id, str) or key_problem(item_id) is not None:
            raise ValueError(cursor)
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError, UnicodeError,
            FeedbackValidationError):
        raise FeedbackValidationError.for_field("cursor", "not a cursor this API issued") from None
    return moment, item_id


@dataclass(frozen=True, slots=True)
class RateDecision:
    """Whether one request may pass, and if not, how long until one more would."""

    allowed: bool
    retry_after: float = 0.0
    """Seconds until the next request would be allowed (0 when allowed)."""


class RemoteBuckets(Protocol):
    """Shared buckets (Redis): ``None`` when the backend could not answer."""

    async def hit(self, key: str, per_second: float, burst: int) -> RateDecision | None:
        """Take one token from ``key``'s bucket."""
        ...
