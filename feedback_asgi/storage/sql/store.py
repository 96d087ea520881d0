"""``SqlFeedbackStore``: feedback in SQLite, PostgreSQL or MariaDB/MySQL via SQLAlchemy async.

URLs: ``sqlite+aiosqlite:///./feedback.db`` (the default; WAL mode, busy timeout),
``postgresql+asyncpg://user@host/db`` (JSONB), ``mysql+asyncmy://user@host/db`` (JSON).
Plain ``sqlite://``, ``postgresql://``, ``mysql://`` and ``mariadb://`` URLs get those drivers.

Constructing a store never connects. The ``ai_feedback`` table is created on first use
when ``config.create_tables`` is on (run ``feedback-asgi db upgrade`` and turn it off in
production). Concurrent ``save`` calls are grouped: one INSERT of many rows and one
COMMIT per batch, and each caller gets its result after its batch committed; a row that
fails (duplicate id, second successor) fails only its own caller.

The store can be used from several event loops one after the other (each test with its
own loop, or several ``asyncio.run`` calls): it keeps one engine per loop, and a loop's
engine is disposed when that loop shuts down. A store built on an ``AsyncEngine`` you pass
uses that engine everywhere and leaves disposing it to you.

Deadlines (PostgreSQL, MariaDB/MySQL; :mod:`.deadlines` has the driver, pool and server
limits): ``save``, ``save_many``, ``ping`` and the reads a post needs (``get``,
``history``, ``find_by_*``) answer within ``connect_timeout_seconds`` of their call,
whatever the server does, checkout, schema creation and commit included; the other reads
within ``statement_timeout_seconds``. Work cut short by a deadline (or a cancellation)
invalidates its connection, which is never handed out again. SQLite is a local file, bounded
by its busy timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event, inspect, select, update
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql import ColumnElement, Select

from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.core.exceptions import (
    FeedbackError,
    FeedbackValidationError,
    StorageUnavailableError,
)
from feedback_asgi.core.records import (
    FeedbackItem,
    FeedbackKind,
    FeedbackSummary,
    normalize_kind,
)
from feedback_asgi.core.result import Err, Ok, Result
from feedback_asgi.storage.base import Page, decode_cursor, window_bounds
from feedback_asgi.storage.batch_plan import plan_batch
from feedback_asgi.storage.group_commit import GroupCommitter
from feedback_asgi.storage.sql.deadlines import bound_engine, server_engine_options
from feedback_asgi.storage.sql.rollup import DIMENSIONS, RollupDeltas, backfill, upsert_statements
from feedback_asgi.storage.sql.schema import (
    ITEM_COLUMNS,
    ROLLUP_TABLE_NAME,
    TABLE_NAME,
    add_missing_columns,
    ai_feedback,
    metadata,
    row_to_item,
)
from feedback_asgi.storage.sql.stats import run_stats
from feedback_asgi.storage.stats import GroupStats, StatsQuery

__all__ = ["SqlFeedbackStore", "normalize_database_url"]

logger = logging.getLogger("feedback_asgi.storage")

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "mysql": "mysql+asyncmy",
    "mariadb": "mariadb+asyncmy",
}
_SQLITE_BUSY_TIMEOUT_MS = 5_000
# Execution option marking SQLite connections that only read: they get no BEGIN.
_SQLITE_READ_OPTION = "feedback_asgi_sqlite_read"
_t = ai_feedback.c
_ROLLUP_COLUMNS = (_t.created_at, _t.rating, _t.thumbs, *(_t[name] for name in DIMENSIONS))

SaveOutcome = Result[str, FeedbackError]


def normalize_database_url(url: str | URL) -> URL:
    """``url`` as a SQLAlchemy URL, with the async driver filled in for a bare dialect name."""
    parsed = make_url(url)
    if "+" not in parsed.drivername and parsed.drivername in _ASYNC_DRIVERS:
        parsed = parsed.set(drivername=_ASYNC_DRIVERS[parsed.drivername])
    return parsed


def _is_memory_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def _engine_options(url: URL, config: FeedbackConfig) -> dict[str, Any]:
    backend = url.get_backend_name()
    if backend != "sqlite":
        return server_engine_options(backend, config)
    if _is_memory_sqlite(url):
        return {"poolclass": StaticPool}
    return {
        "pool_pre_ping": True,
        "pool_timeout": config.connect_timeout_seconds,
        "connect_args": {"timeout": _SQLITE_BUSY_TIMEOUT_MS / 1000},
    }


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL, a busy timeout, and transactions that take the write lock at ``BEGIN``.

    The driver's own transaction handling begins only before INSERT/UPDATE/DELETE, so DDL
    and the reads before a write ran outside any transaction (two workers creating the
    tables both saw them missing); a plain deferred BEGIN would not do either, as a
    transaction that reads first fails its lock upgrade at once, without the busy wait,
    when another connection writes. So the driver emits no BEGIN and every transaction
    starts with ``BEGIN IMMEDIATE``, which waits up to the busy timeout; connections for
    reads (``AUTOCOMMIT``, or the reader's ``_SQLITE_READ_OPTION``) get no transaction and
    never take the write lock.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # SQLAlchemy fires "begin" for AUTOCOMMIT connections too (autobegin on execute).
        options = conn.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT" or options.get(_SQLITE_READ_OPTION):
            return
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot be reached (rather than a bad row)."""
    if isinstance(exc, IntegrityError | DataError):
        return False
    if isinstance(exc, StatementError) and not isinstance(exc, DBAPIError):
        return False  # raised before reaching the database (e.g. a value JSON cannot encode)
    return isinstance(exc, SQLAlchemyError | OSError | TimeoutError | ConnectionError)


def _unavailable(exc: BaseException) -> StorageUnavailableError:
    detail = str(exc).splitlines()[0] if str(exc) else ""
    return StorageUnavailableError(
        f"feedback database unavailable: {type(exc).__name__}{': ' + detail if detail else ''}"
    )


@contextlib.contextmanager
def _reads() -> Iterator[None]:
    """Turn database failures during a read into ``StorageUnavailableError``."""
    try:
        yield
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        raise _unavailable(exc) from exc


class _Abort(Exception):
    """Rolls back a ``save_many`` transaction because one item was rejected."""

    def __init__(self, error: FeedbackError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(slots=True)
class _Bound:
    """What the store keeps per event loop: connections and futures belong to one loop."""

    engine: AsyncEngine
    reader: AsyncEngine
    committer: GroupCommitter[FeedbackItem, SaveOutcome]
    schema_task: asyncio.Task[None] | None = None
    schema_due: float = 0.0
    """``loop.time()`` by which ``schema_task`` gives up (a later caller starts anew)."""
    guard: AsyncGenerator[None, None] | None = None


class SqlFeedbackStore:
    """Feedback items in the ``ai_feedback`` table of a SQL database.

    ``url_or_engine``: a SQLAlchemy URL (``config.database_url`` when ``None``) or an
    ``AsyncEngine``. ``config`` supplies the connect timeout, group commit settings and
    ``create_tables``; ``engine_options`` are passed on to ``create_async_engine``
    (for example ``{"pool_size": 20}``).
    """

    def __init__(
        self,
        url_or_engine: str | URL | AsyncEngine | None = None,
        *,
        config: FeedbackConfig | None = None,
        engine_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config if config is not None else FeedbackConfig()
        self._given_engine: AsyncEngine | None = None
        if isinstance(url_or_engine, AsyncEngine):
            self._given_engine = url_or_engine
            self.url = url_or_engine.url
        else:
            self.url = normalize_database_url(url_or_engine or self.config.database_url)
        self._engine_options = {
            **_engine_options(self.url, self.config),
            **dict(engine_options or {}),
        }
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Bound] = (
            weakref.WeakKeyDictionary()
        )
        self._schema_ready = not self.config.create_tables
        self._available = True
        local = self.dialect_name == "sqlite"  # no network: its busy timeout bounds it
        self._timeout = None if local else self.config.connect_timeout_seconds
        self._slow_timeout = None if local else self.config.statement_timeout_seconds

    def __repr__(self) -> str:
        return f"SqlFeedbackStore({self.url.render_as_string(hide_password=True)!r})"

    @property
    def dialect_name(self) -> str:
        """``sqlite``, ``postgresql``, ``mysql`` or ``mariadb``."""
        return self.url.get_backend_name()

    @property
    def batches_committed(self) -> int:
        """Group-commit batches written on the current event loop (for tests and metrics)."""
        try:
            bound = self._by_loop.get(asyncio.get_running_loop())
        except RuntimeError:
            return 0
        return bound.committer.batches if bound else 0

    # per-loop state

    async def _bound(self) -> _Bound:
        loop = asyncio.get_running_loop()
        bound = self._by_loop.get(loop)
        if bound is not None:
            return bound
        engine = self._given_engine or self._make_engine()
        committer: GroupCommitter[FeedbackItem, SaveOutcome] = GroupCommitter(
            self._write_batch,
            max_batch=self.config.group_commit_max_batch,
            max_wait=self.config.group_commit_max_wait_ms / 1000,
            on_failure=self._batch_failed,
            timeout=self._timeout,
        )
        # Reads are single statements: on PostgreSQL run them in autocommit, which saves
        # the BEGIN and ROLLBACK round trips (same pool, nothing else changes); on SQLite
        # they run without BEGIN IMMEDIATE, so readers never wait for the write lock.
        reader = engine
        if self.dialect_name == "postgresql":
            reader = engine.execution_options(isolation_level="AUTOCOMMIT")
        elif self.dialect_name == "sqlite":
            reader = engine.execution_options(**{_SQLITE_READ_OPTION: True})
        bound = _Bound(engine, reader, committer)
        self._by_loop[loop] = bound
        if self._given_engine is None:
            # An async generator lives as long as its loop: asyncio.run() and
            # asyncio.Runner close it at shutdown, which disposes this loop's engine.
            bound.guard = self._dispose_at_shutdown(weakref.ref(loop), bound)
            await bound.guard.asend(None)
        return bound

    def _make_engine(self) -> AsyncEngine:
        engine = create_async_engine(self.url, **self._engine_options)
        if self.dialect_name == "sqlite":
            if not _is_memory_sqlite(self.url):
                _configure_sqlite(engine)
        else:
            bound_engine(engine, self.config.connect_timeout_seconds)
        return engine

    async def _dispose_at_shutdown(
        self, loop_ref: weakref.ref[asyncio.AbstractEventLoop], bound: _Bound
    ) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            loop = loop_ref()
            if loop is not None and self._by_loop.get(loop) is bound:
                del self._by_loop[loop]
            with contextlib.suppress(Exception):
                await bound.committer.wait_idle()
            with contextlib.suppress(Exception):
                await bound.engine.dispose()

    async def _engine(self) -> AsyncEngine:
        bound = await self._bound()
        if not self._schema_ready:
            # One creation at a time, shared: each caller waits for it only as long as
            # its own deadline allows; a failed or overdue one is tried again by the next.
            loop = asyncio.get_running_loop()
            task = bound.schema_task
            if task is None or task.done() or loop.time() >= bound.schema_due:
                task = loop.create_task(self._create_schema(bound.engine))
                task.add_done_callback(_retrieve)
                bound.schema_task = task
                bound.schema_due = loop.time() + (self._timeout or math.inf)
            await asyncio.shield(task)
        return bound.engine

    async def _reader(self) -> AsyncEngine:
        await self._engine()
        return (await self._bound()).reader

    async def read_engine(self) -> AsyncEngine:
        """This event loop's engine for reads, the table created first when configured.

        For store-level fast paths outside this module (the PostgreSQL export).
        """
        return await self._reader()

    async def _create_schema(self, engine: AsyncEngine) -> None:
        if self._schema_ready:
            return
        try:
            await self._create_tables(engine)
        except (IntegrityError, DBAPIError):
            # Another process created it between our check and our CREATE: check again.
            await self._create_tables(engine)
        self._schema_ready = True

    async def _create_tables(self, engine: AsyncEngine) -> None:
        async with (
            asyncio.timeout(self._timeout) as limit,
            self._connect(engine, begin=True, seconds=self._slow_timeout) as conn,
        ):
            tables = set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
            await conn.run_sync(metadata.create_all, checkfirst=True)
            if TABLE_NAME in tables:
                # a table an older version made: catching up may take longer, once
                limit.reschedule(None)
            if TABLE_NAME in tables and ROLLUP_TABLE_NAME not in tables:
                # rows written before the rollup existed (an older version made the table)
                await backfill(conn)
            if TABLE_NAME in tables:
                await conn.run_sync(add_missing_columns)

    @contextlib.asynccontextmanager
    async def _connect(
        self, engine: AsyncEngine, *, begin: bool = False, seconds: float | None = None
    ) -> AsyncIterator[AsyncConnection]:
        """A pooled connection, in a transaction when ``begin``, for a bounded time.

        Checkout, statements and commit end within ``seconds`` (default: the connect
        timeout) or raise ``TimeoutError``. A connection whose statement was cut short
        (deadline, cancellation, driver timeout) is invalidated: its driver may still be
        waiting for the reply, so it must never serve another statement.
        """
        async with asyncio.timeout(self._timeout if seconds is None else seconds):
            async with engine.begin() if begin else engine.connect() as conn:
                try:
                    yield conn
                except (TimeoutError, asyncio.CancelledError):
                    if not conn.invalidated:
                        with contextlib.suppress(Exception):
                            await conn.invalidate()
                    raise

    def _note(self, available: bool, exc: BaseException | None = None) -> None:
        if available == self._available:
            return
        self._available = available
        if available:
            logger.warning("feedback database %r is reachable again", self)
        else:
            logger.warning("feedback database %r is unavailable: %s", self, exc)

    # writes

    async def save(self, item: FeedbackItem) -> Result[str, FeedbackError]:
        """Store one item; ``Ok(item.id)`` once its batch committed, ``Err`` on failure."""
        loop = asyncio.get_running_loop()
        deadline = None if self._timeout is None else loop.time() + self._timeout
        bound = self._by_loop.get(loop)
        if bound is None or not self._schema_ready:
            try:
                async with asyncio.timeout_at(deadline):
                    bound = await self._bound()
                    await self._engine()
            except Exception as exc:
                return Err(self._failure(exc))
        return await bound.committer.submit(item, deadline=deadline)

    async def save_many(self, items: Sequence[FeedbackItem]) -> Result[list[str], FeedbackError]:
        """Store all ``items`` in one transaction, or none of them."""
        items = list(items)
        if not items:
            return Ok([])
        try:
            async with asyncio.timeout(self._timeout):
                try:
                    engine = await self._engine()
                    async with self._connect(engine, begin=True) as conn:
                        for error in await self._insert(conn, items, atomic=True):
                            if error is not None:
                                raise _Abort(error)
                except _Abort as abort:
                    return Err(abort.error)
                except Exception as exc:
                    return Err(await self._explain(items, exc))
        except TimeoutError as exc:  # while explaining a rejection
            return Err(self._failure(exc))
        self._note(True)
        return Ok([item.id for item in items])

    def _batch_failed(self, exc: BaseException) -> SaveOutcome:
        """The outcome of each save in a batch that timed out or was cancelled."""
        self._note(False, exc)
        return Err(_unavailable(exc))

    def _failure(self, exc: BaseException) -> FeedbackError:
        if isinstance(exc, FeedbackError):
            return exc
        if _is_unavailable(exc):
            self._note(False, exc)
            return _unavailable(exc)
        if isinstance(exc, IntegrityError):
            return FeedbackValidationError("the item conflicts with a stored item")
        if isinstance(exc, DataError | StatementError):
            return FeedbackValidationError.for_field("item", "the database cannot store it")
        logger.exception("unexpected error while saving feedback")
        return FeedbackError(f"could not store feedback: {type(exc).__name__}")

    async def _write_batch(self, items: list[FeedbackItem]) -> list[SaveOutcome]:
        """Write a group-commit batch; isolate failing rows by writing them one by one."""
        try:
            engine = await self._engine()
            async with self._connect(engine, begin=True) as conn:
                errors = await self._insert(conn, items, atomic=False)
        except Exception as exc:
            if _is_unavailable(exc):
                error = self._failure(exc)
                return [Err(error) for _ in items]
            if len(items) == 1:
                return [Err(await self._explain(items, exc))]
            return [await self._write_one(item) for item in items]
        self._note(True)
        return [Ok(item.id) if error is None else Err(error) for item, error in zip(items, errors, strict=True)]

    async def _write_one(self, item: FeedbackItem) -> SaveOutcome:
        match await self.save_many([item]):
            case Ok(ids):
                return Ok(ids[0])
            case Err(error):
                return Err(error)

    async def _explain(self, items: list[FeedbackItem], exc: Exception) -> FeedbackError:
        """Say which constraint a rejected set of items broke (another writer got there first)."""
        if not isinstance(exc, IntegrityError):
            return self._failure(exc)
        ids = [item.id for item in items]
        targets = [item.supersedes for item in items if item.supersedes is not None]
        try:
            engine = await self._reader()
            async with self._connect(engine) as conn:
                found = await conn.scalar(select(_t.id).where(_t.id.in_(ids)).limit(1))
                if found is not None:
                    return FeedbackValidationError.for_field("id", f"an item with id {found} exists")
                if targets:
                    taken = select(_t.supersedes).where(_t.supersedes.in_(targets)).limit(1)
                    target = await conn.scalar(taken)
                    if target is not None:
                        return FeedbackValidationError.for_field(
                            "supersedes", f"item {target} was already superseded"
                        )
        except Exception as lookup_error:
            return self._failure(lookup_error)
        return self._failure(exc)

    async def _insert(
        self, conn: AsyncConnection, items: list[FeedbackItem], *, atomic: bool
    ) -> list[FeedbackError | None]:
        """Insert the acceptable ``items`` in ``conn``'s transaction; the rest get an error.

        Successors are checked here (target exists, not superseded yet) and their targets
        lose ``is_live`` in the same transaction; the UNIQUE constraint on ``supersedes``
        still settles a race with another process.
        """
        targets = {item.supersedes for item in items if item.supersedes is not None}
        stored_roots: dict[str, str] = {}
        stored_live: dict[str, Any] = {}  # live targets: their figures leave the rollup
        taken: set[str] = set()
        if targets:
            found = await conn.execute(
                select(_t.root_id, _t.supersedes, _t.is_live, *_ROLLUP_COLUMNS, _t.id).where(
                    _t.id.in_(targets) | _t.supersedes.in_(targets)
                )
            )
            for stored in found:
                if stored.id in targets:
                    stored_roots[stored.id] = stored.root_id
                    if stored.is_live:
                        stored_live[stored.id] = stored._mapping
                if stored.supersedes in targets:
                    taken.add(stored.supersedes)
        plan = plan_batch(items, stored_roots, taken, atomic=atomic)
        if plan.stopped:
            return plan.errors
        accepted, stored_targets = plan.rows, plan.stored_targets
        if accepted:
            await conn.execute(ai_feedback.insert(), list(accepted.values()))
        if stored_targets:
            await conn.execute(
                update(ai_feedback).where(_t.id.in_(stored_targets)).values(is_live=False)
            )
        deltas = RollupDeltas()
        for row in accepted.values():
            if row["is_live"]:
                deltas.add(row, +1)
        for target in stored_targets:
            if target in stored_live:
                deltas.add(stored_live[target], -1)
        for statement, parameters in upsert_statements(self.dialect_name, deltas.rows()):
            await conn.execute(statement, parameters)
        return plan.errors

    # reads

    async def _fetch(self, statement: Select[Any], *, slow: bool = False) -> list[FeedbackItem]:
        """Rows of ``statement`` within the connect timeout (``slow``: the statement timeout)."""
        seconds = self._slow_timeout if slow else self._timeout
        with _reads():
            async with asyncio.timeout(seconds):
                engine = await self._reader()
                async with self._connect(engine, seconds=seconds) as conn:
                    rows = (await conn.execute(statement)).all()
        self._note(True)
        return [row_to_item(row) for row in rows]

    @staticmethod
    def _items(*conditions: ColumnElement[bool], include_history: bool) -> Select[Any]:
        statement = select(*ITEM_COLUMNS)
        if not include_history:
            statement = statement.where(_t.is_live)
        return statement.where(*conditions)

    @staticmethod
    def _newest_first(statement: Select[Any]) -> Select[Any]:
        return statement.order_by(_t.created_at.desc(), _t.id.desc())

    async def get(self, feedback_id: str) -> FeedbackItem | None:
        """The row with this id, live or not."""
        found = await self._fetch(select(*ITEM_COLUMNS).where(_t.id == feedback_id))
        return found[0] if found else None

    async def history(self, feedback_id: str) -> list[FeedbackItem]:
        """Every version in the chain containing ``feedback_id``, oldest first."""
        root = select(_t.root_id).where(_t.id == feedback_id).scalar_subquery()
        rows = await self._fetch(select(*ITEM_COLUMNS).where(_t.root_id == root))
        by_target = {item.supersedes: item for item in rows if item.supersedes is not None}
        chain = [item for item in rows if item.supersedes is None]
        while chain and chain[-1].id in by_target:
            chain.append(by_target[chain[-1].id])
        return chain

    async def find_by_session(
        self, session_id: str, *, include_history: bool = False
    ) -> list[FeedbackItem]:
        """Items of one session, newest first."""
        condition = _t.session_id == session_id
        return await self._fetch(self._newest_first(self._items(condition, include_history=include_history)))

    async def find_by_trace(
        self, trace_id: str, *, include_history: bool = False
    ) -> list[FeedbackItem]:
        """Items on one trace, newest first."""
        condition = _t.trace_id == trace_id
        return await self._fetch(self._newest_first(self._items(condition, include_history=include_history)))

    async def find_by_type(
        self, feedback_type: FeedbackKind, *, limit: int = 100, include_history: bool = False
    ) -> list[FeedbackItem]:
        """Items of one kind, newest first, at most ``limit``."""
        condition = _t.kind == str(normalize_kind(feedback_type))
        statement = self._items(condition, include_history=include_history)
        return await self._fetch(self._newest_first(statement).limit(max(limit, 0)))

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
        """Filtered items, newest first, keyset-paginated on ``(created_at, id)``."""
        conditions: list[ColumnElement[bool]] = []
        if type is not None:
            conditions.append(_t.kind == str(normalize_kind(type)))
        for column, wanted in (
            (_t.model, model),
            (_t.session_id, session_id),
            (_t.user_id, user_id),
            (_t.trace_id, trace_id),
            (_t.request_id, request_id),
            (_t.otel_trace_id, otel_trace_id),
        ):
            if wanted is not None:
                conditions.append(column == wanted)
        if since is not None:
            conditions.append(_t.created_at >= since)
        if until is not None:
            conditions.append(_t.created_at < until)
        if cursor:
            moment, last_id = decode_cursor(cursor)
            # (created_at, id) < (moment, last_id), spelled so every backend uses the index
            conditions.append(_t.created_at <= moment)
            conditions.append((_t.created_at < moment) | (_t.id < last_id))
        limit = max(limit, 0)
        statement = self._newest_first(self._items(*conditions, include_history=include_history))
        return Page.from_rows(await self._fetch(statement.limit(limit + 1), slow=True), limit)

    async def aggregate(
        self,
        *,
        window_hours: float = 24,
        model: str | None = None,
        provider: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> FeedbackSummary:
        """Figures over live items in the window (``since``/``until`` override it).

        Whole hours come from the rollup, the partial hours at the edges from the rows.
        """
        start, end = window_bounds(window_hours, since, until)
        filters = {key: value for key, value in (("model", model), ("provider", provider))
                   if value is not None}
        (group,) = await self.stats(StatsQuery(start, end, filters=filters))
        return FeedbackSummary(
            group.total_count,
            group.average_rating,
            dict(group.count_by_type),
            group.thumbs_up,
            group.thumbs_down,
        )

    async def stats(self, query: StatsQuery) -> list[GroupStats]:
        """Stats of live rows, computed in the database (see :mod:`.stats`)."""
        with _reads():
            async with asyncio.timeout(self._slow_timeout):
                engine = await self._reader()
                async with self._connect(engine, seconds=self._slow_timeout) as conn:
                    groups = await run_stats(conn, query)
        self._note(True)
        return groups

    async def iter_items(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        batch_size: int = 1000,
        include_history: bool = False,
    ) -> AsyncIterator[FeedbackItem]:
        """Matching items, oldest first, fetched ``batch_size`` rows per query.

        Each batch is its own short query resuming after the last row seen, so no
        connection or transaction is held while the caller works on the items.
        """
        batch_size = max(batch_size, 1)
        last: FeedbackItem | None = None
        while True:
            conditions: list[ColumnElement[bool]] = []
            if since is not None:
                conditions.append(_t.created_at >= since)
            if until is not None:
                conditions.append(_t.created_at < until)
            if last is not None:
                conditions.append(_t.created_at >= last.created_at)
                conditions.append((_t.created_at > last.created_at) | (_t.id > last.id))
            statement = self._items(*conditions, include_history=include_history)
            statement = statement.order_by(_t.created_at, _t.id).limit(batch_size)
            batch = await self._fetch(statement, slow=True)
            for item in batch:
                yield item
            if len(batch) < batch_size:
                return
            last = batch[-1]

    async def ping(self) -> float:
        """Round-trip time of ``SELECT 1`` in milliseconds; raises ``StorageUnavailableError``."""
        with _reads():
            bound = await self._bound()
            started = time.perf_counter()
            async with self._connect(bound.reader) as conn:
                await conn.scalar(select(1))
        self._note(True)
        return (time.perf_counter() - started) * 1000

    async def close(self) -> None:
        """Wait for pending writes, then release this loop's connections."""
        loop = asyncio.get_running_loop()
        bound = self._by_loop.pop(loop, None)
        if bound is None:
            return
        await bound.committer.wait_idle()
        if bound.guard is not None:
            await bound.guard.aclose()


def _retrieve(task: asyncio.Task[None]) -> None:
    """Mark a shared task's failure as seen: its waiters got it, or none was left."""
    if not task.cancelled():
        task.exception()
