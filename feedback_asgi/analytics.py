"""Stats over collected feedback: counts by kind, average rating, thumbs-up rate, per group.

::

    report = await feedback_stats(kit.store, window="7d", by="model")
    for group in report.groups:
        print(group.key, group.total_count, group.average_rating, group.thumbs_up_rate)
    series = await feedback_timeseries(kit.store, window="30d", interval="day")

Figures count the live version of each item (edits replace, retractions remove) created in
``[since, until)``. Stores compute them in their database (:class:`StatsStoreProtocol`);
the SQL store answers from an hourly rollup plus the partial hours at the window's edges.
``unique=True`` adds distinct users and sessions, counted from the rows: that is the
slow part, so it is off unless asked for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from feedback_asgi.core.exceptions import FeedbackValidationError
from feedback_asgi.core.records import utc_now
from feedback_asgi.storage.base import FeedbackStoreProtocol, check_time, key_problem
from feedback_asgi.storage.stats import (
    GROUP_KEYS,
    GroupStats,
    Interval,
    StatsQuery,
    StatsStoreProtocol,
    compute_stats,
)

__all__ = [
    "DEFAULT_WINDOW",
    "GROUP_KEYS",
    "MAX_BUCKETS",
    "GroupStats",
    "StatsQuery",
    "StatsReport",
    "StatsStoreProtocol",
    "feedback_stats",
    "feedback_timeseries",
    "parse_window",
    "resolve_window",
]

DEFAULT_WINDOW = "7d"
MAX_BUCKETS = 10_000
"""Most buckets a time series may have (90 days hourly is 2,160)."""
_WINDOW = re.compile(r"^\s*(\d{1,6})\s*([mhdw])\s*$", re.IGNORECASE)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_MAX_WINDOW = timedelta(days=3660)


def parse_window(text: str) -> timedelta:
    """``"90m"``, ``"24h"``, ``"7d"``, ``"2w"`` as a ``timedelta``.

    Raises ``FeedbackValidationError`` on field ``window`` for anything else.
    """
    match = _WINDOW.match(text) if isinstance(text, str) else None
    if match is None:
        raise FeedbackValidationError.for_field(
            "window", f"{text!r} is not a window: use a number and m, h, d or w, e.g. 24h or 7d"
        )
    amount, unit = int(match.group(1)), match.group(2).lower()
    span = timedelta(**{_UNITS[unit]: amount})
    if not timedelta(0) < span <= _MAX_WINDOW:
        raise FeedbackValidationError.for_field("window", "must be between 1m and 10 years")
    return span


def resolve_window(
    window: str | timedelta | None,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    now: datetime | None = None,
) -> tuple[datetime, datetime]:
    """The ``[since, until)`` of a request: explicit bounds win; ``until`` defaults to now.

    Explicit bounds must pass :func:`~feedback_asgi.storage.base.check_time` (a time zone,
    1970-01-01 to 9999-01-01 UTC); they come back in UTC.
    """
    if since is not None:
        since = check_time("since", since)
    if until is not None:
        until = check_time("until", until)
    end = until if until is not None else (now or utc_now())
    if since is None:
        span = parse_window(window or DEFAULT_WINDOW) if not isinstance(window, timedelta) \
            else window
        since = end - span
    if since >= end:
        raise FeedbackValidationError.for_field("since", "must be before until")
    return since, end


@dataclass(frozen=True, slots=True)
class StatsReport:
    """The answer of :func:`feedback_stats` or :func:`feedback_timeseries`."""

    since: datetime
    until: datetime
    by: str | None
    filters: dict[str, str]
    groups: list[GroupStats]
    interval: Interval | None = None
    totals: GroupStats | None = field(default=None)
    """Figures over every group (stats only)."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON the routes send (the same in every adapter)."""
        data: dict[str, Any] = {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "by": self.by,
            "filters": dict(self.filters),
        }
        if self.interval is not None:
            data["interval"] = self.interval
            data["points"] = [
                {"bucket": g.bucket.isoformat() if g.bucket else None,
                 **({"key": g.key} if self.by else {}), **g.to_dict()}
                for g in self.groups
            ]
            return data
        data["groups"] = [{"key": g.key, **g.to_dict()} for g in self.groups]
        if self.totals is not None:
            data["totals"] = self.totals.to_dict()
        return data


def _filters(values: dict[str, str | None]) -> dict[str, str]:
    filters: dict[str, str] = {}
    for key, value in values.items():
        if value is None:
            continue
        if not isinstance(value, str) or not value:
            raise FeedbackValidationError.for_field(key, "must be a non-empty string")
        problem = key_problem(value)
        if problem is not None:  # no stored item can match it
            raise FeedbackValidationError.for_field(key, problem)
        filters[key] = value
    return filters


def _query(
    since: datetime,
    until: datetime,
    by: str | None,
    filters: dict[str, str],
    interval: Interval | None,
    unique: bool,
) -> StatsQuery:
    if by is not None and by not in GROUP_KEYS:
        raise FeedbackValidationError.for_field("by", f"must be one of {', '.join(GROUP_KEYS)}")
    return StatsQuery(since, until, by=by, filters=filters, interval=interval, unique=unique)


def _totals(groups: list[GroupStats]) -> GroupStats:
    kinds: dict[str, int] = {}
    for group in groups:
        for kind, count in group.count_by_type.items():
            kinds[kind] = kinds.get(kind, 0) + count
    return GroupStats(
        total_count=sum(g.total_count for g in groups),
        count_by_type=kinds,
        rating_count=sum(g.rating_count for g in groups),
        rating_sum=sum(g.rating_sum for g in groups),
        thumbs_up=sum(g.thumbs_up for g in groups),
        thumbs_down=sum(g.thumbs_down for g in groups),
    )


async def feedback_stats(
    store: FeedbackStoreProtocol,
    *,
    window: str | timedelta | None = DEFAULT_WINDOW,
    since: datetime | None = None,
    until: datetime | None = None,
    by: str | None = None,
    model: str | None = None,
    provider: str | None = None,
    intent: str | None = None,
    project: str | None = None,
    endpoint: str | None = None,
    request_id: str | None = None,
    otel_trace_id: str | None = None,
    unique: bool = False,
) -> StatsReport:
    """Figures per ``by`` group (``model``, ``provider``, ``intent``, ``project``, ``endpoint``).

    ``window`` (``"24h"``, ``"7d"``, ``"30d"``, ``"90d"``...) ends at ``until`` (default
    now), unless ``since`` is given. The other keyword arguments filter (``request_id`` and
    ``otel_trace_id``, the client's and the tracing system's ids, are counted from the rows:
    no rollup keeps them). ``totals`` adds
    up the groups (distinct users and sessions are not additive: with ``unique`` and
    ``by``, totals count them over the whole window). Raises ``FeedbackValidationError``
    for a bad window or group, ``StorageUnavailableError`` when the store is down.
    """
    start, end = resolve_window(window, since, until)
    filters = _filters({"model": model, "provider": provider, "intent": intent,
                        "project": project, "endpoint": endpoint, "request_id": request_id,
                        "otel_trace_id": otel_trace_id})
    groups = await compute_stats(store, _query(start, end, by, filters, None, unique))
    if by is None:
        totals = groups[0]
    elif unique:
        (totals,) = await compute_stats(store, _query(start, end, None, filters, None, True))
    else:
        totals = _totals(groups)
    return StatsReport(start, end, by, filters, groups, totals=totals)


async def feedback_timeseries(
    store: FeedbackStoreProtocol,
    *,
    interval: Interval = "day",
    window: str | timedelta | None = DEFAULT_WINDOW,
    since: datetime | None = None,
    until: datetime | None = None,
    by: str | None = None,
    model: str | None = None,
    provider: str | None = None,
    intent: str | None = None,
    project: str | None = None,
    endpoint: str | None = None,
    request_id: str | None = None,
    otel_trace_id: str | None = None,
    unique: bool = False,
) -> StatsReport:
    """The same figures per UTC ``hour`` or ``day`` (and ``by`` group), oldest first.

    Buckets without feedback are left out. At most :data:`MAX_BUCKETS` buckets.
    """
    if interval not in ("hour", "day"):
        raise FeedbackValidationError.for_field("interval", "must be hour or day")
    start, end = resolve_window(window, since, until)
    step = timedelta(hours=1) if interval == "hour" else timedelta(days=1)
    if (end - start) / step > MAX_BUCKETS:
        raise FeedbackValidationError.for_field(
            "interval", f"more than {MAX_BUCKETS} buckets: use a longer interval or window"
        )
    filters = _filters({"model": model, "provider": provider, "intent": intent,
                        "project": project, "endpoint": endpoint, "request_id": request_id,
                        "otel_trace_id": otel_trace_id})
    groups = await compute_stats(store, _query(start, end, by, filters, interval, unique))
    return StatsReport(start, end, by, filters, groups, interval=interval)
