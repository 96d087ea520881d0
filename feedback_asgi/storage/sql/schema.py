"""The ``ai_feedback`` table; the conversions between its rows and ``FeedbackItem`` are
re-exported from :mod:`feedback_asgi.storage.sql.rows` (which needs no SQLAlchemy).

Everything a query or an aggregate filters on has a typed column; the item's own content
(``value``, ``context``, ``metadata``) is kept as JSON (JSONB on PostgreSQL). Rows are never
edited after insertion except ``is_live``, which is cleared in the transaction that saves
the row's successor. ``root_id`` is the id of the first version of a chain, so a whole
history is one indexed lookup.

``ai_feedback_hourly`` holds the live rows' figures per UTC hour and dimensions (kind,
model, provider, intent, project, endpoint): kept in step by the store in the transaction
of every write (see :mod:`feedback_asgi.storage.sql.rollup`), it makes stats over long
windows cheap.

The Alembic migrations in :mod:`feedback_asgi.storage.sql.migrations` create exactly this schema.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Dialect,
    Double,
    Index,
    MetaData,
    SmallInteger,
    String,
    Table,
    TypeDecorator,
    UniqueConstraint,
    inspect,
)
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.types import TypeEngine

from feedback_asgi.storage.sql.rows import (
    CORRELATION_LENGTH,
    ID_LENGTH,
    item_to_row,
    row_to_item,
)

__all__ = [
    "CORRELATION_LENGTH",
    "ID_LENGTH",
    "ITEM_COLUMNS",
    "ROLLUP_TABLE_NAME",
    "TABLE_NAME",
    "UtcDateTime",
    "add_missing_columns",
    "ai_feedback",
    "ai_feedback_hourly",
    "item_to_row",
    "metadata",
    "row_to_item",
]

TABLE_NAME = "ai_feedback"
ROLLUP_TABLE_NAME = "ai_feedback_hourly"


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime with microseconds on every backend.

    PostgreSQL stores ``timestamptz``; SQLite and MariaDB store the UTC wall time
    (``DATETIME(6)`` on MariaDB), and values read back get ``tzinfo=UTC`` again.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _id_type() -> TypeEngine[str]:
    # "C" collation on PostgreSQL: ids sort by code point, as in Python and on the other backends.
    return String(ID_LENGTH).with_variant(String(ID_LENGTH, collation="C"), "postgresql")


JSON_TYPE: TypeEngine[Any] = JSON().with_variant(postgresql.JSONB(), "postgresql")

metadata = MetaData()

ai_feedback = Table(
    TABLE_NAME,
    metadata,
    Column("id", _id_type(), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("trace_id", String(CORRELATION_LENGTH)),
    Column("session_id", String(CORRELATION_LENGTH)),
    Column("user_id", String(CORRELATION_LENGTH)),
    Column("model", String(CORRELATION_LENGTH)),
    Column("provider", String(CORRELATION_LENGTH)),
    Column("intent", String(CORRELATION_LENGTH)),
    Column("project", String(CORRELATION_LENGTH)),
    Column("endpoint", String(CORRELATION_LENGTH)),
    Column("rating", Double()),
    Column("thumbs", SmallInteger()),
    Column("supersedes", _id_type()),
    Column("tombstone", Boolean(), nullable=False),
    Column("is_live", Boolean(), nullable=False),
    Column("root_id", _id_type(), nullable=False),
    Column("value", JSON_TYPE),
    Column("context", JSON_TYPE, nullable=False),
    Column("metadata", JSON_TYPE, nullable=False, key="meta"),
    # added by migration 0003 (so last: ALTER TABLE ADD COLUMN appends)
    Column("request_id", String(CORRELATION_LENGTH)),
    Column("otel_trace_id", String(CORRELATION_LENGTH)),
    UniqueConstraint("supersedes", name="uq_ai_feedback_supersedes"),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
    mysql_collate="utf8mb4_bin",
)

_c = ai_feedback.c
# Every listing filters on one column and orders by (created_at, id): one index each.
Index("ix_ai_feedback_created_at", _c.created_at, _c.id)
Index("ix_ai_feedback_session_id", _c.session_id, _c.created_at, _c.id)
Index("ix_ai_feedback_trace_id", _c.trace_id, _c.created_at, _c.id)
Index("ix_ai_feedback_kind", _c.kind, _c.created_at, _c.id)
Index("ix_ai_feedback_model", _c.model, _c.created_at, _c.id)
Index("ix_ai_feedback_user_id", _c.user_id, _c.created_at, _c.id)
Index("ix_ai_feedback_root_id", _c.root_id)
# Aggregates over a window read live rows only; on PostgreSQL this is an index-only scan.
Index(
    "ix_ai_feedback_live_window",
    _c.created_at,
    postgresql_include=["kind", "rating", "thumbs", "model", "provider"],
    postgresql_where=_c.is_live,
    sqlite_where=_c.is_live,
)
# added by migration 0003: the client's and the tracing system's ids, for correlation
Index("ix_ai_feedback_request_id", _c.request_id, _c.created_at, _c.id)
Index("ix_ai_feedback_otel_trace_id", _c.otel_trace_id, _c.created_at, _c.id)

ai_feedback_hourly = Table(
    ROLLUP_TABLE_NAME,
    metadata,
    Column("bucket", UtcDateTime(), primary_key=True),
    # digest of (kind, model, provider, intent, project, endpoint), NULLs included: one
    # primary key for every backend, where a UNIQUE over nullable columns would not hold
    Column("dims", String(32), primary_key=True),
    Column("day", UtcDateTime(), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("model", String(CORRELATION_LENGTH)),
    Column("provider", String(CORRELATION_LENGTH)),
    Column("intent", String(CORRELATION_LENGTH)),
    Column("project", String(CORRELATION_LENGTH)),
    Column("endpoint", String(CORRELATION_LENGTH)),
    Column("n", BigInteger(), nullable=False),
    Column("rated", BigInteger(), nullable=False),
    Column("rating_sum", Double(), nullable=False),
    Column("up", BigInteger(), nullable=False),
    Column("down", BigInteger(), nullable=False),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
    mysql_collate="utf8mb4_bin",
)
"""Figures of the live rows per UTC hour (``bucket``) and dimensions; ``day`` is its UTC day."""

ITEM_COLUMNS = (
    _c.id,
    _c.kind,
    _c.value,
    _c.context,
    _c.meta,
    _c.created_at,
    _c.supersedes,
    _c.tombstone,
)
"""The columns :func:`row_to_item` needs, in its order."""


def add_missing_columns(connection: Connection) -> list[str]:
    """Bring an ``ai_feedback`` table made by an older version up to this schema, in place:
    add the columns (and their indexes) later migrations added. Returns what was added.

    For a store that creates its tables lazily (``create_tables``), where ``CREATE TABLE``
    skips a table that exists; ``feedback-asgi db upgrade`` does the same by migration.
    """
    inspector = inspect(connection)
    present = {column["name"] for column in inspector.get_columns(TABLE_NAME)}
    indexes = {index["name"] for index in inspector.get_indexes(TABLE_NAME)}
    added = []
    preparer = connection.dialect.identifier_preparer
    for column in ai_feedback.columns:
        if column.name in present:
            continue
        kind = column.type.compile(dialect=connection.dialect)
        connection.exec_driver_sql(
            f"ALTER TABLE {preparer.quote(TABLE_NAME)} ADD COLUMN {preparer.quote(column.name)} {kind}"
        )
        added.append(column.name)
    for index in ai_feedback.indexes:
        if index.name not in indexes and any(column.name in added for column in index.columns):
            index.create(connection)
    return added
