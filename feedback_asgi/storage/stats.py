"""What a store computes for stats: the query, the figures of one group, and the protocol.

A store that can compute stats itself (in its database, with GROUP BY) implements
:class:`StatsStoreProtocol`; :func:`feedback_asgi.analytics.feedback_stats` uses it and falls
back to :func:`stats_from_items` (a pass over ``iter_items``) for a store that does not.
The memory store computes with :func:`stats_from_items` too, so every backend agrees with
one reference: the live items in ``[since, until)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias, runtime_checkable

from feedback_asgi.core.records import FeedbackItem, FeedbackType

if TYPE_CHECKING:
    from feedback_asgi.storage.base import FeedbackStoreProtocol

__all__ = [
    "FILTER_KEYS",
    "GROUP_KEYS",
    "ROW_FILTER_KEYS",
    "GroupStats",
    "Interval",
    "StatsQuery",
    "StatsStoreProtocol",
    "bucket_start",
    "compute_stats",
    "empty_result",
    "item_measures",
    "order_groups",
    "stats_from_items",
]

GROUP_KEYS: tuple[str, ...] = ("model", "provider", "intent", "project", "endpoint")
"""Context keys stats can be grouped by and filtered on."""
ROW_FILTER_KEYS: tuple[str, ...] = ("request_id", "otel_trace_id")
"""Context keys stats can be filtered on but not grouped by: one value names a request or
a trace, so no rollup keeps them and stores count such figures from the rows."""
FILTER_KEYS: tuple[str, ...] = GROUP_KEYS + ROW_FILTER_KEYS
"""Every key :attr:`StatsQuery.filters` accepts."""

Interval: TypeAlias = Literal["hour", "day"]


def bucket_start(moment: datetime, interval: Interval) -> datetime:
    """The start of the UTC hour or day containing ``moment``."""
    moment = moment.astimezone(UTC)
    if interval == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class StatsQuery:
    """Which live items to count (``since <= created_at < until``) and how to group them.

    ``by`` is one of :data:`GROUP_KEYS` or ``None`` (one group); ``filters`` maps keys of
    :data:`FILTER_KEYS` to the value an item's context must have. ``interval`` makes it a
    time series (one group per UTC hour or day and key). ``unique`` adds distinct user and
    session counts, which no rollup can give: stores compute them from the rows.
    """

    since: datetime
    until: datetime | None
    """``None``: no upper bound."""
    by: str | None = None
    filters: Mapping[str, str] = field(default_factory=dict)
    interval: Interval | None = None
    unique: bool = False

    def __post_init__(self) -> None:
        if self.by is not None and self.by not in GROUP_KEYS:
            raise ValueError(f"cannot group by {self.by!r}: use one of {', '.join(GROUP_KEYS)}")
        unknown = set(self.filters) - set(FILTER_KEYS)
        if unknown:
            raise ValueError(f"cannot filter on {', '.join(sorted(unknown))}")
        if self.since.tzinfo is None or (self.until is not None and self.until.tzinfo is None):
            raise ValueError("since and until must be timezone-aware")

    @property
    def needs_rows(self) -> bool:
        """Whether a filter names a key no rollup keeps (:data:`ROW_FILTER_KEYS`)."""
        return any(key in self.filters for key in ROW_FILTER_KEYS)


@dataclass(frozen=True, slots=True)
class GroupStats:
    """The figures of one group (and, in a time series, one bucket)."""

    key: str | None = None
    """The group's value of ``query.by`` (``None``: not grouped, or items without one)."""
    bucket: datetime | None = None
    """Start of the hour or day, in a time series."""
    total_count: int = 0
    count_by_type: dict[str, int] = field(default_factory=dict)
    rating_count: int = 0
    rating_sum: float = 0.0
    thumbs_up: int = 0
    thumbs_down: int = 0
    unique_users: int | None = None
    unique_sessions: int | None = None

    @property
    def average_rating(self) -> float | None:
        """Mean of the ratings, ``None`` without any."""
        return self.rating_sum / self.rating_count if self.rating_count else None

    @property
    def thumbs_up_rate(self) -> float | None:
        """``up / (up + down)``, ``None`` without votes (the "accuracy")."""
        votes = self.thumbs_up + self.thumbs_down
        return self.thumbs_up / votes if votes else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures (``key``/``bucket`` left to the caller)."""
        data: dict[str, Any] = {
            "total_count": self.total_count,
            "count_by_type": dict(sorted(self.count_by_type.items())),
            "rating_count": self.rating_count,
            "average_rating": self.average_rating,
            "thumbs_up": self.thumbs_up,
            "thumbs_down": self.thumbs_down,
            "thumbs_up_rate": self.thumbs_up_rate,
        }
        if self.unique_users is not None:
            data["unique_users"] = self.unique_users
        if self.unique_sessions is not None:
            data["unique_sessions"] = self.unique_sessions
        return data


@runtime_checkable
class StatsStoreProtocol(Protocol):
    """A store that computes :class:`GroupStats` itself (the SQL, Django and memory stores)."""

    async def stats(self, query: StatsQuery) -> list[GroupStats]:
        """Groups with at least one live item, ordered by ``bucket`` then ``key`` (``None`` last).

        Without ``query.by`` and ``query.interval`` there is exactly one group, even if empty.
        """
        ...


def item_measures(item: FeedbackItem) -> tuple[float | None, int | None]:
    """The ``(rating, thumbs)`` an item counts with, exactly as the SQL store's columns."""
    kind, value = item.feedback_type, item.value
    rating = float(value) if kind == FeedbackType.RATING and isinstance(value, int | float) else None
    thumbs = None
    if kind == FeedbackType.THUMBS and (value == 1 or value == -1):
        thumbs = 1 if value == 1 else -1
    return rating, thumbs


def _text(item: FeedbackItem, key: str) -> str | None:
    value = item.context.get(key)
    return value if isinstance(value, str) else None


def order_groups(groups: Iterable[GroupStats]) -> list[GroupStats]:
    """Groups ordered by bucket, then key with ``None`` last."""
    return sorted(
        groups,
        key=lambda g: (g.bucket or datetime.min.replace(tzinfo=UTC), g.key is None, g.key or ""),
    )


def empty_result(query: StatsQuery, groups: list[GroupStats]) -> list[GroupStats]:
    """``groups``, or one empty group when ungrouped stats found nothing."""
    if not groups and query.by is None and query.interval is None:
        return [GroupStats(unique_users=0 if query.unique else None,
                           unique_sessions=0 if query.unique else None)]
    return groups


def stats_from_items(query: StatsQuery, items: Iterable[FeedbackItem]) -> list[GroupStats]:
    """The reference computation in Python over ``items``: the live ones (``iter_items()``).

    Tombstones and items outside the window or the filters are skipped; superseded
    versions cannot be told from the item alone, so the caller leaves them out.
    """
    figures: dict[tuple[datetime | None, str | None], dict[str, Any]] = {}
    for item in items:
        if item.tombstone or item.created_at < query.since:
            continue
        if query.until is not None and item.created_at >= query.until:
            continue
        if any(_text(item, key) != wanted for key, wanted in query.filters.items()):
            continue
        key = _text(item, query.by) if query.by is not None else None
        bucket = bucket_start(item.created_at, query.interval) if query.interval else None
        group = figures.setdefault(
            (bucket, key),
            {"n": 0, "kinds": {}, "rated": 0, "sum": 0.0, "up": 0, "down": 0,
             "users": set(), "sessions": set()},
        )
        group["n"] += 1
        kind = str(item.feedback_type)
        group["kinds"][kind] = group["kinds"].get(kind, 0) + 1
        rating, thumbs = item_measures(item)
        if rating is not None:
            group["rated"] += 1
            group["sum"] += rating
        group["up"] += thumbs == 1
        group["down"] += thumbs == -1
        for name, context_key in (("users", "user_id"), ("sessions", "session_id")):
            value = _text(item, context_key)
            if value is not None:
                group[name].add(value)
    groups = [
        GroupStats(
            key=key,
            bucket=bucket,
            total_count=g["n"],
            count_by_type=g["kinds"],
            rating_count=g["rated"],
            rating_sum=g["sum"],
            thumbs_up=g["up"],
            thumbs_down=g["down"],
            unique_users=len(g["users"]) if query.unique else None,
            unique_sessions=len(g["sessions"]) if query.unique else None,
        )
        for (bucket, key), g in figures.items()
    ]
    return empty_result(query, order_groups(groups))


async def compute_stats(store: FeedbackStoreProtocol, query: StatsQuery) -> list[GroupStats]:
    """``store.stats(query)`` when the store computes stats itself, else one pass in Python.

    The fallback reads every live item of the window through ``iter_items`` (constant
    memory, but time in proportion to the rows): fine for a small custom store.
    """
    if isinstance(store, StatsStoreProtocol):
        return await store.stats(query)
    items = [item async for item in store.iter_items(since=query.since, until=query.until)]
    return stats_from_items(query, items)
