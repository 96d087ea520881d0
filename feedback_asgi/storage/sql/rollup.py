"""The hourly rollup ``ai_feedback_hourly``: what a write changes in it, and how to rebuild it.

Each rollup row holds the figures (count, rated count, rating sum, thumbs up, thumbs down)
of the live rows of one UTC hour with one combination of kind, model, provider, intent,
project and endpoint. The store keeps it in step inside the transaction of every write
(:class:`RollupDeltas`): a new live row adds its figures, and the version it supersedes or
retracts takes its own out again (in the hour and dimensions *it* was counted in). A batch
becomes one upsert of pre-aggregated deltas, written in key order so concurrent writers
lock rollup rows in the same order. :func:`backfill` rebuilds the table from the rows (the
migration and a lazily created rollup next to existing rows use it).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Double,
    String,
    bindparam,
    case,
    cast,
    delete,
    func,
    select,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from feedback_asgi.storage.sql.schema import ai_feedback, ai_feedback_hourly
from feedback_asgi.storage.stats import Interval, bucket_start

__all__ = [
    "DIMENSIONS",
    "MEASURES",
    "RollupDeltas",
    "as_utc",
    "backfill",
    "backfill_sync",
    "dims_digest",
    "time_floor",
    "upsert_statements",
]

DIMENSIONS: tuple[str, ...] = ("kind", "model", "provider", "intent", "project", "endpoint")
"""The rollup's grouping columns besides the hour, in digest order."""
MEASURES: tuple[str, ...] = ("n", "rated", "rating_sum", "up", "down")
"""The additive figures of a rollup row."""
_CHUNK = 1000  # rollup rows per statement: well under every driver's parameter limit

_t = ai_feedback.c
_r = ai_feedback_hourly.c


def dims_digest(values: Sequence[str | None]) -> str:
    """A 32-character key for one combination of :data:`DIMENSIONS` (``None`` distinct from "")."""
    encoded = "|".join("-" if value is None else f"{len(value)}:{value}" for value in values)
    return hashlib.blake2b(encoded.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


class RollupDeltas:
    """The changes one transaction makes to the rollup, pre-aggregated per hour and dimensions."""

    __slots__ = ("_rows",)

    def __init__(self) -> None:
        self._rows: dict[tuple[Any, ...], dict[str, Any]] = {}

    def add(self, row: Mapping[str, Any], sign: int) -> None:
        """Count ``row`` (an ``ai_feedback`` row as a mapping) in (``+1``) or out (``-1``)."""
        created: datetime = row["created_at"]
        if created.tzinfo is not UTC:
            created = created.astimezone(UTC)
        bucket = created.replace(minute=0, second=0, microsecond=0)
        key = (bucket, row["kind"], row["model"], row["provider"], row["intent"],
               row["project"], row["endpoint"])
        entry = self._rows.get(key)
        if entry is None:
            dims = key[1:]
            entry = {"bucket": bucket, "dims": dims_digest(dims), "day": bucket_start(bucket, "day"),
                     **dict(zip(DIMENSIONS, dims, strict=True)),
                     "n": 0, "rated": 0, "rating_sum": 0.0, "up": 0, "down": 0}
            self._rows[key] = entry
        entry["n"] += sign
        rating = row["rating"]
        if rating is not None:
            entry["rated"] += sign
            entry["rating_sum"] += sign * rating
        thumbs = row["thumbs"]
        if thumbs == 1:
            entry["up"] += sign
        elif thumbs == -1:
            entry["down"] += sign

    def rows(self) -> list[dict[str, Any]]:
        """The non-zero deltas in key order (the order every writer locks rollup rows in)."""
        return sorted(
            (entry for entry in self._rows.values() if any(entry[name] for name in MEASURES)),
            key=lambda entry: (entry["bucket"], entry["dims"]),
        )


_PG_UPSERT = text(
    "INSERT INTO ai_feedback_hourly (bucket, dims, day, kind, model, provider, intent, project, "
    "endpoint, n, rated, rating_sum, up, down) "
    "SELECT * FROM unnest(:bucket, :dims, :day, :kind, :model, :provider, :intent, :project, "
    ":endpoint, :n, :rated, :rating_sum, :up, :down) "
    "ON CONFLICT (bucket, dims) DO UPDATE SET "
    + ", ".join(f"{name} = ai_feedback_hourly.{name} + EXCLUDED.{name}" for name in MEASURES)
)
"""PostgreSQL: one statement of arrays whatever the batch size (prepared once, not recompiled)."""


def _pg_upsert() -> Any:
    from sqlalchemy.dialects.postgresql import ARRAY

    types: dict[str, Any] = {"bucket": DateTime(timezone=True), "day": DateTime(timezone=True),
                             "rating_sum": Double(), **{name: BigInteger() for name in
                                                        ("n", "rated", "up", "down")}}
    return _PG_UPSERT.bindparams(*(
        bindparam(name, type_=ARRAY(types.get(name, String()))) for name in _COLUMNS
    ))


_COLUMNS = ("bucket", "dims", "day", *DIMENSIONS, *MEASURES)


@functools.cache
def _upsert(dialect_name: str) -> Any:
    """The dialect's upsert of one rollup row (run with many rows: compiled once)."""
    if dialect_name == "postgresql":
        return _pg_upsert()
    if dialect_name in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        mine = mysql_insert(ai_feedback_hourly)
        return mine.on_duplicate_key_update(
            {name: _r[name] + mine.inserted[name] for name in MEASURES}
        )
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    lite = sqlite_insert(ai_feedback_hourly)
    return lite.on_conflict_do_update(
        index_elements=[_r.bucket, _r.dims],
        set_={name: _r[name] + lite.excluded[name] for name in MEASURES},
    )


def upsert_statements(
    dialect_name: str, rows: list[dict[str, Any]]
) -> list[tuple[Any, Any]]:
    """``(statement, parameters)`` pairs adding ``rows`` to the rollup, for ``conn.execute``."""
    if not rows:
        return []
    statement = _upsert(dialect_name)
    if dialect_name == "postgresql":
        return [(statement, {name: [row[name] for row in rows] for name in _COLUMNS})]
    return [(statement, rows[start : start + _CHUNK]) for start in range(0, len(rows), _CHUNK)]


def time_floor(dialect_name: str, column: Any, interval: Interval) -> ColumnElement[Any]:
    """SQL for the start of the UTC hour/day of ``column``, comparable with rollup buckets."""
    if dialect_name == "postgresql":
        truncated = func.date_trunc(interval, func.timezone("UTC", column))
        return func.timezone("UTC", truncated)
    pattern = "%Y-%m-%d %H:00:00" if interval == "hour" else "%Y-%m-%d 00:00:00"
    if dialect_name == "sqlite":
        # the text SQLAlchemy stores datetimes as on SQLite, microseconds included
        return func.strftime(pattern + ".000000", column)
    from sqlalchemy.dialects.mysql import DATETIME

    return cast(func.date_format(column, pattern), DATETIME(fsp=6))


def as_utc(value: Any) -> datetime:
    """A bucket read back from any backend (datetime or text) as an aware UTC datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"not a time: {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _grouped_rows(dialect_name: str) -> Any:
    hour = time_floor(dialect_name, _t.created_at, "hour").label("bucket")
    dims = [_t[name] for name in DIMENSIONS]
    return (
        select(
            hour,
            *dims,
            func.count(),
            func.count(_t.rating),
            func.coalesce(func.sum(_t.rating), 0.0),
            func.sum(case((_t.thumbs == 1, 1), else_=0)),
            func.sum(case((_t.thumbs == -1, 1), else_=0)),
        )
        .where(_t.is_live)
        .group_by(hour, *dims)
    )


def _rollup_row(record: Any) -> dict[str, Any]:
    bucket = as_utc(record[0])
    values = tuple(record[1 : 1 + len(DIMENSIONS)])
    n, rated, rating_sum, up, down = record[1 + len(DIMENSIONS) :]
    return {
        "bucket": bucket, "dims": dims_digest(values), "day": bucket_start(bucket, "day"),
        **dict(zip(DIMENSIONS, values, strict=True)),
        "n": int(n), "rated": int(rated), "rating_sum": float(rating_sum),
        "up": int(up or 0), "down": int(down or 0),
    }


def _chunks(records: Iterable[Any]) -> Iterator[list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    for record in records:
        rows.append(_rollup_row(record))
        if len(rows) >= _CHUNK:
            yield rows
            rows = []
    if rows:
        yield rows


async def backfill(conn: AsyncConnection) -> int:
    """Rebuild the rollup from the live rows in ``conn``'s transaction; the rows written.

    The grouping runs in the database; only the grouped rows (hours x dimensions) pass
    through Python, to get their digest.
    """
    await conn.execute(delete(ai_feedback_hourly))
    written = 0
    for rows in _chunks(await conn.execute(_grouped_rows(conn.dialect.name))):
        await conn.execute(ai_feedback_hourly.insert(), rows)
        written += len(rows)
    return written


def backfill_sync(conn: Connection) -> int:
    """:func:`backfill` on a synchronous connection (the Alembic migration's)."""
    conn.execute(delete(ai_feedback_hourly))
    written = 0
    for rows in _chunks(conn.execute(_grouped_rows(conn.dialect.name))):
        conn.execute(ai_feedback_hourly.insert(), rows)
        written += len(rows)
    return written
