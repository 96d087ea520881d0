"""Stats for :class:`~feedback_asgi.integrations.django.store.DjangoFeedbackStore`, in the ORM.

One ``GROUP BY`` over the live rows of the window (the Django app has no rollup table:
its model mirrors ``ai_feedback`` only), plus a ``COUNT(DISTINCT ...)`` query when
distinct users and sessions are asked for. The figures are those of every other store.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDay, TruncHour

from feedback_asgi.integrations.django.models import AiFeedback
from feedback_asgi.storage.stats import GroupStats, StatsQuery, empty_result, order_groups

__all__ = ["django_stats"]


def _window(rows: QuerySet[AiFeedback], query: StatsQuery) -> tuple[QuerySet[AiFeedback], list[str]]:
    filters: dict[str, Any] = {"is_live": True, "created_at__gte": query.since, **query.filters}
    if query.until is not None:
        filters["created_at__lt"] = query.until
    rows = rows.filter(**filters).order_by()
    keys: list[str] = []
    if query.by is not None:
        keys.append(query.by)
    if query.interval is not None:
        trunc = TruncHour if query.interval == "hour" else TruncDay
        rows = rows.annotate(bucket=trunc("created_at", tzinfo=UTC))
        keys.append("bucket")
    return rows, keys


def _key(query: StatsQuery, row: dict[str, Any]) -> tuple[datetime | None, str | None]:
    bucket = row.get("bucket") if query.interval is not None else None
    if isinstance(bucket, datetime):
        bucket = bucket.replace(tzinfo=UTC) if bucket.tzinfo is None else bucket.astimezone(UTC)
    return bucket, row.get(query.by) if query.by is not None else None


async def django_stats(rows: QuerySet[AiFeedback], query: StatsQuery) -> list[GroupStats]:
    """The groups of ``query`` over ``rows`` (the store's queryset), grouped in the database."""
    window, keys = _window(rows, query)
    grouped = window.values(*keys, "kind").annotate(
        n=Count("id"),
        rated=Count("rating"),
        rating_total=Sum("rating"),
        up=Count("id", filter=Q(thumbs=1)),
        down=Count("id", filter=Q(thumbs=-1)),
    )
    figures: dict[tuple[datetime | None, str | None], dict[str, Any]] = {}
    async for row in grouped:
        entry = figures.setdefault(
            _key(query, row), {"n": 0, "kinds": {}, "rated": 0, "sum": 0.0, "up": 0, "down": 0}
        )
        entry["n"] += int(row["n"])
        entry["kinds"][row["kind"]] = int(row["n"])
        entry["rated"] += int(row["rated"])
        entry["sum"] += float(row["rating_total"] or 0.0)
        entry["up"] += int(row["up"])
        entry["down"] += int(row["down"])
    distinct: dict[tuple[datetime | None, str | None], tuple[int, int]] = {}
    if query.unique:
        counted = window.values(*keys).annotate(
            users=Count("user_id", distinct=True), sessions=Count("session_id", distinct=True)
        )
        async for row in counted:
            distinct[_key(query, row)] = (int(row["users"]), int(row["sessions"]))
    groups = []
    for (bucket, key), entry in figures.items():
        users, sessions = distinct.get((bucket, key), (0, 0))
        groups.append(GroupStats(
            key=key, bucket=bucket, total_count=entry["n"], count_by_type=entry["kinds"],
            rating_count=entry["rated"], rating_sum=entry["sum"], thumbs_up=entry["up"],
            thumbs_down=entry["down"],
            unique_users=users if query.unique else None,
            unique_sessions=sessions if query.unique else None,
        ))
    return empty_result(query, order_groups(groups))
