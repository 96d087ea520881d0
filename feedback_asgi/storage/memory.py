"""In-process stores: bounded, not durable; for tests, scripts and a single process."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from feedback_asgi.core.exceptions import (
    FeedbackError,
    FeedbackValidationError,
    StorageUnavailableError,
)
from feedback_asgi.core.records import (
    Exchange,
    FeedbackItem,
    FeedbackKind,
    FeedbackSummary,
    FeedbackType,
    normalize_kind,
)
from feedback_asgi.core.result import Err, Ok, Result
from feedback_asgi.storage.base import Page, decode_cursor, window_bounds
from feedback_asgi.storage.stats import GroupStats, StatsQuery, stats_from_items

__all__ = ["MemoryExchangeStore", "MemoryFeedbackStore", "PendingExchange"]

logger = logging.getLogger("feedback_asgi")


def _newest_first(item: FeedbackItem) -> tuple[datetime, str]:
    return item.created_at, item.id


class MemoryFeedbackStore:
    """Feedback items in a dict. Holds at most ``max_items``; past that, saves fail."""

    def __init__(self, *, max_items: int = 100_000) -> None:
        self.max_items = max_items
        self._items: dict[str, FeedbackItem] = {}
        self._successor: dict[str, str] = {}

    # writes

    def _check(self, item: FeedbackItem, pending: dict[str, FeedbackItem]) -> FeedbackError | None:
        if item.id in self._items or item.id in pending:
            return FeedbackValidationError.for_field("id", f"an item with id {item.id} exists")
        if item.supersedes is not None:
            target = item.supersedes
            if target not in self._items and target not in pending:
                return FeedbackValidationError.for_field("supersedes", f"no item {target}")
            taken = target in self._successor or any(
                other.supersedes == target for other in pending.values()
            )
            if taken:
                return FeedbackValidationError.for_field(
                    "supersedes", f"item {target} was already superseded"
                )
        return None

    async def save(self, item: FeedbackItem) -> Result[str, FeedbackError]:
        """Store one item."""
        match await self.save_many([item]):
            case Ok(ids):
                return Ok(ids[0])
            case Err(error):
                return Err(error)

    async def save_many(self, items: Sequence[FeedbackItem]) -> Result[list[str], FeedbackError]:
        """Store all ``items`` or none of them."""
        if len(self._items) + len(items) > self.max_items:
            return Err(StorageUnavailableError(f"memory store is full ({self.max_items} items)"))
        pending: dict[str, FeedbackItem] = {}
        for item in items:
            error = self._check(item, pending)
            if error is not None:
                return Err(error)
            pending[item.id] = item
        for item in items:
            self._items[item.id] = item
            if item.supersedes is not None:
                self._successor[item.supersedes] = item.id
        return Ok([item.id for item in items])

    # reads

    def _is_live(self, item: FeedbackItem) -> bool:
        return not item.tombstone and item.id not in self._successor

    def _select(
        self, predicate: Callable[[FeedbackItem], bool], include_history: bool
    ) -> list[FeedbackItem]:
        found = [
            item
            for item in self._items.values()
            if (include_history or self._is_live(item)) and predicate(item)
        ]
        found.sort(key=_newest_first, reverse=True)
        return found

    async def get(self, feedback_id: str) -> FeedbackItem | None:
        """The row with this id."""
        return self._items.get(feedback_id)

    async def history(self, feedback_id: str) -> list[FeedbackItem]:
        """The chain containing ``feedback_id``, oldest first."""
        item = self._items.get(feedback_id)
        if item is None:
            return []
        while item.supersedes is not None and item.supersedes in self._items:
            item = self._items[item.supersedes]
        chain = [item]
        while chain[-1].id in self._successor:
            chain.append(self._items[self._successor[chain[-1].id]])
        return chain

    async def find_by_session(
        self, session_id: str, *, include_history: bool = False
    ) -> list[FeedbackItem]:
        """Items of one session, newest first."""
        return self._select(lambda i: i.context.get("session_id") == session_id, include_history)

    async def find_by_trace(
        self, trace_id: str, *, include_history: bool = False
    ) -> list[FeedbackItem]:
        """Items on one trace, newest first."""
        return self._select(lambda i: i.context.get("trace_id") == trace_id, include_history)

    async def find_by_type(
        self, feedback_type: FeedbackKind, *, limit: int = 100, include_history: bool = False
    ) -> list[FeedbackItem]:
        """Items of one kind, newest first."""
        kind = normalize_kind(feedback_type)
        return self._select(lambda i: i.feedback_type == kind, include_history)[:limit]

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
        """Filtered, newest first, keyset-paginated."""
        kind = normalize_kind(type) if type is not None else None
        after = decode_cursor(cursor) if cursor else None
        wanted = {"model": model, "session_id": session_id, "user_id": user_id,
                  "trace_id": trace_id, "request_id": request_id,
                  "otel_trace_id": otel_trace_id}
        wanted = {key: value for key, value in wanted.items() if value is not None}

        def matches(item: FeedbackItem) -> bool:
            if kind is not None and item.feedback_type != kind:
                return False
            if any(item.context.get(key) != value for key, value in wanted.items()):
                return False
            if since is not None and item.created_at < since:
                return False
            if until is not None and item.created_at >= until:
                return False
            return after is None or _newest_first(item) < after

        return Page.from_rows(self._select(matches, include_history), limit)

    async def aggregate(
        self,
        *,
        window_hours: float = 24,
        model: str | None = None,
        provider: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> FeedbackSummary:
        """Figures over live items in the window."""
        start, end = window_bounds(window_hours, since, until)
        counts: dict[str, int] = {}
        ratings: list[float] = []
        up = down = 0
        for item in self._items.values():
            if not self._is_live(item) or item.created_at < start:
                continue
            if end is not None and item.created_at >= end:
                continue
            if model is not None and item.context.get("model") != model:
                continue
            if provider is not None and item.context.get("provider") != provider:
                continue
            kind = str(item.feedback_type)
            counts[kind] = counts.get(kind, 0) + 1
            if item.feedback_type == FeedbackType.RATING and isinstance(item.value, int | float):
                ratings.append(float(item.value))
            elif item.feedback_type == FeedbackType.THUMBS:
                up += item.value == 1
                down += item.value == -1
        average = sum(ratings) / len(ratings) if ratings else None
        return FeedbackSummary(sum(counts.values()), average, counts, up, down)

    async def stats(self, query: StatsQuery) -> list[GroupStats]:
        """Stats of the live items (see :class:`~feedback_asgi.storage.stats.StatsStoreProtocol`)."""
        return stats_from_items(query, (i for i in self._items.values() if self._is_live(i)))

    async def iter_items(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        batch_size: int = 1000,
        include_history: bool = False,
    ) -> AsyncIterator[FeedbackItem]:
        """Matching items, oldest first."""

        def in_window(item: FeedbackItem) -> bool:
            if since is not None and item.created_at < since:
                return False
            return until is None or item.created_at < until

        for item in reversed(self._select(in_window, include_history)):
            yield item

    async def ping(self) -> float:
        """Always reachable."""
        return 0.0

    async def close(self) -> None:
        """Nothing to release."""

    def clear(self) -> None:
        """Forget every item."""
        self._items.clear()
        self._successor.clear()

    def __len__(self) -> int:
        return len(self._items)


class PendingExchange(Protocol):
    """An exchange built on first read (an ``ExchangeCapture`` after ``prepare()``)."""

    trace_id: str

    def to_exchange(self) -> Exchange:
        """The finished, redacted exchange."""
        ...


class MemoryExchangeStore:
    """Exchanges in an LRU dict with a TTL; when full the least recently used is dropped.

    Besides finished exchanges (:meth:`put`) it keeps pending ones (:meth:`put_pending`)
    and frozen ones (:meth:`put_frozen`), built on first read: most exchanges are never
    read, and building one costs more than the request that produced it. The first write
    under a trace id wins until it expires; later ones are counted in :attr:`duplicates`.
    """

    def __init__(self, *, max_items: int = 10_000, default_ttl: float = 86_400.0) -> None:
        self.max_items = max_items
        self.default_ttl = default_ttl
        self.dropped = 0
        self.duplicates = 0
        """Writes refused because a live exchange has that trace id: the first one stays."""
        self._entries: OrderedDict[
            str, tuple[float, Exchange | PendingExchange | tuple[Any, ...]]
        ] = OrderedDict()
        self._thaw: Callable[[tuple[Any, ...]], Exchange] | None = None

    @property
    def accepts_pending(self) -> bool:
        """Whether :meth:`put_pending` may be used (not when a subclass overrides ``put``)."""
        return type(self).put is MemoryExchangeStore.put

    async def put(self, exchange: Exchange, ttl: float | None = None) -> None:
        """Keep ``exchange`` under its trace id."""
        self.put_nowait(exchange, ttl)

    def put_nowait(self, exchange: Exchange, ttl: float | None = None) -> None:
        """Synchronous :meth:`put`, for callers outside the event loop."""
        self._keep(exchange.trace_id, exchange, ttl)

    def put_pending(self, pending: PendingExchange, ttl: float | None = None) -> None:
        """Keep ``pending``; its ``to_exchange()`` runs when it is first read."""
        self._keep(pending.trace_id, pending, ttl)

    def put_frozen(
        self,
        trace_id: str,
        frozen: tuple[Any, ...],
        thaw: Callable[[tuple[Any, ...]], Exchange],
        ttl: float | None = None,
    ) -> None:
        """Keep a plain tuple that ``thaw(frozen)`` turns into the exchange on first read.

        A store holds one ``thaw`` function (the capture's). The collector stops tracking
        a tuple of plain values once a collection has looked at it; the ``(expires,
        frozen)`` pair the store keeps may stay tracked until a later full collection.
        """
        if self._thaw is None:
            self._thaw = thaw
        elif self._thaw is not thaw:
            raise ValueError("one MemoryExchangeStore keeps the frozen form of one capture type")
        self._keep(trace_id, frozen, ttl)

    def _keep(
        self,
        trace_id: str,
        entry: Exchange | PendingExchange | tuple[Any, ...],
        ttl: float | None,
    ) -> None:
        now = time.monotonic()
        entries = self._entries
        earlier = entries.get(trace_id)
        if earlier is not None and earlier[0] > now:
            # once stored, an exchange is never replaced: what feedback rates cannot change
            self.duplicates += 1
            return
        entries[trace_id] = (now + (self.default_ttl if ttl is None else ttl), entry)
        if earlier is not None:
            entries.move_to_end(trace_id)
        while len(entries) > self.max_items:
            entries.popitem(last=False)
            self.dropped += 1

    async def get(self, trace_id: str) -> Exchange | None:
        """The live exchange for ``trace_id``, or ``None``."""
        entry = self._entries.get(trace_id)
        if entry is None:
            return None
        expires, value = entry
        if expires <= time.monotonic():
            del self._entries[trace_id]
            return None
        if not isinstance(value, Exchange):
            try:
                if isinstance(value, tuple):
                    assert self._thaw is not None
                    value = self._thaw(value)
                else:
                    value = value.to_exchange()
            except Exception:
                logger.exception("feedback-asgi: building the exchange of trace %s failed", trace_id)
                del self._entries[trace_id]
                return None
            self._entries[trace_id] = (expires, value)
        self._entries.move_to_end(trace_id)
        return value

    async def close(self) -> None:
        """Nothing to release."""

    def __len__(self) -> int:
        return len(self._entries)
