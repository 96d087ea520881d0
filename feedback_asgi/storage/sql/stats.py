"""Stats over the SQL store, in one statement: whole hours from the rollup, edges from the rows.

A window ``[since, until)`` splits into the whole UTC hours inside it, read from
``ai_feedback_hourly`` (a few rows per hour), and at most two partial hours at its edges,
read from the live rows through the partial index on ``created_at``. Both are grouped in
the database and combined by ``UNION ALL`` and an outer ``GROUP BY``. Distinct users and
sessions cannot be added up from hourly figures: when asked for, a second query counts
them over the window's rows (the slow part; off by default).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, case, distinct, func, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from feedback_asgi.storage.sql.rollup import as_utc, time_floor
from feedback_asgi.storage.sql.schema import ai_feedback, ai_feedback_hourly
from feedback_asgi.storage.stats import (
    GroupStats,
    StatsQuery,
    bucket_start,
    empty_result,
    order_groups,
)

__all__ = ["run_stats", "split_window"]

_t = ai_feedback.c
_r = ai_feedback_hourly.c
_HOUR = timedelta(hours=1)

Range = tuple[datetime, datetime | None]


def split_window(
    since: datetime, until: datetime | None
) -> tuple[list[Range], Range | None]:
    """``(raw ranges, rollup range)``: the partial edge hours and the whole hours between."""
    first = bucket_start(since, "hour")
    whole_from = first if first == since else first + _HOUR
    if until is None:
        return ([(since, whole_from)] if since < whole_from else []), (whole_from, None)
    whole_to = bucket_start(until, "hour")
    if whole_from >= whole_to:
        return [(since, until)], None
    raw: list[Range] = []
    if since < whole_from:
        raw.append((since, whole_from))
    if whole_to < until:
        raw.append((whole_to, until))
    return raw, (whole_from, whole_to)


def _keys(query: StatsQuery, dialect_name: str, *, rollup: bool) -> list[tuple[str, Any]]:
    table = _r if rollup else _t
    keys: list[tuple[str, Any]] = []
    if query.by is not None:
        keys.append(("g", table[query.by]))
    if query.interval is not None:
        if rollup:
            keys.append(("b", _r.bucket if query.interval == "hour" else _r.day))
        else:
            keys.append(("b", time_floor(dialect_name, _t.created_at, query.interval)))
    return keys


def _filters(query: StatsQuery, *, rollup: bool) -> list[ColumnElement[bool]]:
    table = _r if rollup else _t
    return [table[key] == value for key, value in query.filters.items()]


def _raw_part(query: StatsQuery, dialect_name: str, span: Range) -> Select[Any]:
    keys = [*_keys(query, dialect_name, rollup=False), ("kind", _t.kind)]
    conditions = [_t.is_live, _t.created_at >= span[0], *_filters(query, rollup=False)]
    if span[1] is not None:
        conditions.append(_t.created_at < span[1])
    return (
        select(
            *(expression.label(name) for name, expression in keys),
            func.count().label("n"),
            func.count(_t.rating).label("rated"),
            func.sum(_t.rating).label("rsum"),
            func.sum(case((_t.thumbs == 1, 1), else_=0)).label("up"),
            func.sum(case((_t.thumbs == -1, 1), else_=0)).label("down"),
        )
        .where(*conditions)
        .group_by(*(expression for _, expression in keys))
    )


def _rollup_part(query: StatsQuery, dialect_name: str, span: Range) -> Select[Any]:
    keys = [*_keys(query, dialect_name, rollup=True), ("kind", _r.kind)]
    conditions = [_r.bucket >= span[0], *_filters(query, rollup=True)]
    if span[1] is not None:
        conditions.append(_r.bucket < span[1])
    return (
        select(
            *(expression.label(name) for name, expression in keys),
            func.sum(_r.n).label("n"),
            func.sum(_r.rated).label("rated"),
            func.sum(_r.rating_sum).label("rsum"),
            func.sum(_r.up).label("up"),
            func.sum(_r.down).label("down"),
        )
        .where(*conditions)
        .group_by(*(expression for _, expression in keys))
    )


def _figures_statement(query: StatsQuery, dialect_name: str, use_rollup: bool) -> Select[Any]:
    if use_rollup and not query.needs_rows:
        raw, whole = split_window(query.since, query.until)
    else:
        raw, whole = [(query.since, query.until)], None
    parts = [_raw_part(query, dialect_name, span) for span in raw]
    if whole is not None:
        parts.append(_rollup_part(query, dialect_name, whole))
    if len(parts) == 1:
        return parts[0]
    combined = union_all(*parts).subquery("parts")
    names = [name for name, _ in _keys(query, dialect_name, rollup=True)] + ["kind"]
    return select(
        *(combined.c[name] for name in names),
        func.sum(combined.c.n).label("n"),
        func.sum(combined.c.rated).label("rated"),
        func.sum(combined.c.rsum).label("rsum"),
        func.sum(combined.c.up).label("up"),
        func.sum(combined.c.down).label("down"),
    ).group_by(*(combined.c[name] for name in names))


def _unique_statement(query: StatsQuery, dialect_name: str) -> Select[Any]:
    keys = _keys(query, dialect_name, rollup=False)
    conditions = [_t.is_live, _t.created_at >= query.since, *_filters(query, rollup=False)]
    if query.until is not None:
        conditions.append(_t.created_at < query.until)
    return (
        select(
            *(expression.label(name) for name, expression in keys),
            func.count(distinct(_t.user_id)).label("users"),
            func.count(distinct(_t.session_id)).label("sessions"),
        )
        .where(*conditions)
        .group_by(*(expression for _, expression in keys))
    )


def _group_key(query: StatsQuery, row: Any) -> tuple[datetime | None, str | None]:
    mapping = row._mapping
    bucket = as_utc(mapping["b"]) if query.interval is not None else None
    key = mapping["g"] if query.by is not None else None
    return bucket, key


async def run_stats(
    conn: AsyncConnection, query: StatsQuery, *, use_rollup: bool = True
) -> list[GroupStats]:
    """The groups of ``query`` over the live rows (see :class:`StatsStoreProtocol`)."""
    dialect_name = conn.dialect.name
    figures: dict[tuple[datetime | None, str | None], dict[str, Any]] = {}
    for row in await conn.execute(_figures_statement(query, dialect_name, use_rollup)):
        n = int(row.n or 0)
        if n == 0:  # every version counted here was superseded or retracted since
            continue
        entry = figures.setdefault(
            _group_key(query, row),
            {"n": 0, "kinds": {}, "rated": 0, "rsum": 0.0, "up": 0, "down": 0},
        )
        entry["n"] += n
        entry["kinds"][row.kind] = entry["kinds"].get(row.kind, 0) + n
        entry["rated"] += int(row.rated or 0)
        entry["rsum"] += float(row.rsum or 0.0)
        entry["up"] += int(row.up or 0)
        entry["down"] += int(row.down or 0)
    distinct_counts: dict[tuple[datetime | None, str | None], tuple[int, int]] = {}
    if query.unique:
        for row in await conn.execute(_unique_statement(query, dialect_name)):
            distinct_counts[_group_key(query, row)] = (int(row.users), int(row.sessions))
    groups = []
    for (bucket, key), entry in figures.items():
        users, sessions = distinct_counts.get((bucket, key), (0, 0))
        groups.append(GroupStats(
            key=key,
            bucket=bucket,
            total_count=entry["n"],
            count_by_type=entry["kinds"],
            rating_count=entry["rated"],
            rating_sum=entry["rsum"],
            thumbs_up=entry["up"],
            thumbs_down=entry["down"],
            unique_users=users if query.unique else None,
            unique_sessions=sessions if query.unique else None,
        ))
    return empty_result(query, order_groups(groups))
