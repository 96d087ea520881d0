"""``DjangoFeedbackStore``: feedback rows in the Django project's own database.

Implements :class:`~feedback_asgi.storage.base.FeedbackStoreProtocol` over the
:class:`~feedback_asgi.integrations.django.models.AiFeedback` model and passes the shared
conformance suite. Reads use the async ORM; writes run one ``transaction.atomic()`` per
batch in Django's thread-sensitive executor (transactions are not available in async
code). Concurrent ``save`` calls are grouped by the shared
:class:`~feedback_asgi.storage.group_commit.GroupCommitter`, one per event loop, exactly as
the SQLAlchemy store does; row conversion and successor checks are that store's functions.

The database is the one Django's routers choose for the model, unless ``using`` names one.

Deadlines: a ``save``, ``ping`` or read a post needs answers within
``connect_timeout_seconds``, other reads within ``statement_timeout_seconds`` (SQLite:
no deadline, its busy timeout bounds it). On PostgreSQL each write transaction also sets
``statement_timeout`` and ``lock_timeout`` to the connect timeout for itself
(``set_config(..., true)``), so the server abandons a write its caller gave up on.
Django's drivers are synchronous: the deadline bounds the caller's wait, not the worker
thread, which only the connection's own settings bound, in ``DATABASES[alias]["OPTIONS"]``:
PostgreSQL ``{"connect_timeout": 2, "options": "-c statement_timeout=30000"}`` (psycopg
has no read timeout: a server that never answers holds that thread until TCP gives up);
MariaDB/MySQL ``{"connect_timeout": 2, "read_timeout": 30, "write_timeout": 30}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    connections,
    router,
    transaction,
)
from django.db.models import Count, Q, QuerySet, Sum

from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.core.exceptions import (
    FeedbackError,
    FeedbackValidationError,
    StorageUnavailableError,
)
from feedback_asgi.core.records import FeedbackItem, FeedbackKind, FeedbackSummary, normalize_kind
from feedback_asgi.core.result import Err, Ok, Result
from feedback_asgi.integrations.django.models import ITEM_FIELDS, AiFeedback
from feedback_asgi.storage.base import Page, decode_cursor, window_bounds
from feedback_asgi.storage.batch_plan import plan_batch
from feedback_asgi.storage.group_commit import GroupCommitter
from feedback_asgi.storage.sql.rows import row_to_item
from feedback_asgi.storage.stats import GroupStats, StatsQuery

__all__ = ["DjangoFeedbackStore"]

SaveOutcome = Result[str, FeedbackError]


class _Abort(Exception):
    """Rolls back a ``save_many`` transaction because one item was rejected."""

    def __init__(self, error: FeedbackError) -> None:
        super().__init__(error.message)
        self.error = error


def _unavailable(exc: BaseException) -> StorageUnavailableError:
    detail = str(exc).splitlines()[0] if str(exc) else ""
    return StorageUnavailableError(
        f"feedback database unavailable: {type(exc).__name__}{': ' + detail if detail else ''}"
    )


def _is_row_problem(exc: BaseException) -> bool:
    return isinstance(exc, IntegrityError | DataError)


class DjangoFeedbackStore:
    """Feedback items in the ``ai_feedback`` table, through the Django ORM.

    ``using``: a database alias (default: what the routers say for ``AiFeedback``).
    ``config`` supplies the group commit settings.
    """

    def __init__(self, *, using: str | None = None, config: FeedbackConfig | None = None) -> None:
        self.using = using
        self.config = config if config is not None else FeedbackConfig()
        self._committers: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, GroupCommitter[FeedbackItem, SaveOutcome]
        ] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return f"DjangoFeedbackStore(using={self.using!r})"

    def _write_alias(self) -> str:
        return self.using or router.db_for_write(AiFeedback)

    def _rows(self) -> QuerySet[AiFeedback]:
        return AiFeedback.objects.using(self.using or router.db_for_read(AiFeedback))

    # writes

    def _committer(self) -> GroupCommitter[FeedbackItem, SaveOutcome]:
        loop = asyncio.get_running_loop()
        committer = self._committers.get(loop)
        if committer is None:
            committer = GroupCommitter(
                sync_to_async(self._write_batch, thread_sensitive=True),
                max_batch=self.config.group_commit_max_batch,
                max_wait=self.config.group_commit_max_wait_ms / 1000,
                on_failure=lambda exc: Err(_unavailable(exc)),
                timeout=self._seconds(self._write_alias()),
            )
            self._committers[loop] = committer
        return committer

    async def save(self, item: FeedbackItem) -> Result[str, FeedbackError]:
        """Store one item; ``Ok(item.id)`` once its batch committed, ``Err`` on failure."""
        return await self._committer().submit(item)

    async def save_many(self, items: Sequence[FeedbackItem]) -> Result[list[str], FeedbackError]:
        """Store all ``items`` in one transaction, or none of them."""
        items = list(items)
        if not items:
            return Ok([])
        try:
            async with asyncio.timeout(self._seconds(self._write_alias())):
                result: Result[list[str], FeedbackError] = await sync_to_async(
                    self._save_all, thread_sensitive=True
                )(items)
        except TimeoutError as exc:
            return Err(_unavailable(exc))
        return result

    def _seconds(self, alias: str, *, slow: bool = False) -> float | None:
        """How long a caller waits on ``alias``: ``None`` for SQLite (a local file)."""
        if connections[alias].vendor == "sqlite":
            return None
        config = self.config
        return config.statement_timeout_seconds if slow else config.connect_timeout_seconds

    def _limit_transaction(self, alias: str) -> None:
        """On PostgreSQL, let the server give up on this transaction when its caller does."""
        connection = connections[alias]
        if connection.vendor != "postgresql":
            return
        milliseconds = str(max(1, round(self.config.connect_timeout_seconds * 1000)))
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('statement_timeout', %s, true),"
                " set_config('lock_timeout', %s, true)",
                [milliseconds, milliseconds],
            )

    def _save_all(self, items: list[FeedbackItem]) -> Result[list[str], FeedbackError]:
        alias = self._write_alias()
        try:
            with transaction.atomic(using=alias):
                self._limit_transaction(alias)
                for error in self._insert(alias, items, atomic=True):
                    if error is not None:
                        raise _Abort(error)
        except _Abort as abort:
            return Err(abort.error)
        except Exception as exc:
            return Err(self._explain(alias, items, exc))
        return Ok([item.id for item in items])

    def _write_batch(self, items: list[FeedbackItem]) -> list[SaveOutcome]:
        """A group-commit batch in one transaction; failing rows are retried one by one."""
        alias = self._write_alias()
        try:
            with transaction.atomic(using=alias):
                self._limit_transaction(alias)
                errors = self._insert(alias, items, atomic=False)
        except Exception as exc:
            if not _is_row_problem(exc):
                error = self._failure(alias, exc)
                return [Err(error) for _ in items]
            if len(items) == 1:
                return [Err(self._explain(alias, items, exc))]
            outcomes: list[SaveOutcome] = []
            for item in items:
                match self._save_all([item]):
                    case Ok(ids):
                        outcomes.append(Ok(ids[0]))
                    case Err(failure):
                        outcomes.append(Err(failure))
            return outcomes
        return [Ok(item.id) if error is None else Err(error) for item, error in zip(items, errors, strict=True)]

    def _insert(
        self, alias: str, items: list[FeedbackItem], *, atomic: bool
    ) -> list[FeedbackError | None]:
        """Insert the acceptable ``items`` (inside a transaction); the rest get an error.

        The same rules as the SQLAlchemy store: a successor's target must exist and not be
        superseded yet, and loses ``is_live`` in this transaction; the UNIQUE constraint on
        ``supersedes`` settles races with other processes.
        """
        rows = AiFeedback.objects.using(alias)
        targets = {item.supersedes for item in items if item.supersedes is not None}
        stored_roots: dict[str, str] = {}
        taken: set[str] = set()
        if targets:
            found = rows.filter(Q(id__in=targets) | Q(supersedes__in=targets)).values_list(
                "id", "root_id", "supersedes"
            )
            for row_id, root_id, supersedes in found:
                if row_id in targets:
                    stored_roots[row_id] = root_id
                if supersedes in targets:
                    taken.add(supersedes)
        plan = plan_batch(items, stored_roots, taken, atomic=atomic)
        if plan.stopped:
            return plan.errors
        accepted, stored_targets = plan.rows, plan.stored_targets
        if accepted:
            rows.bulk_create([AiFeedback(**row) for row in accepted.values()])
        if stored_targets:
            rows.filter(id__in=stored_targets).update(is_live=False)
        return plan.errors

    def _failure(self, alias: str, exc: BaseException) -> FeedbackError:
        if isinstance(exc, FeedbackError):
            return exc
        if isinstance(exc, IntegrityError):
            return FeedbackValidationError("the item conflicts with a stored item")
        if isinstance(exc, DataError):
            return FeedbackValidationError.for_field("item", "the database cannot store it")
        if isinstance(exc, DatabaseError | OSError | TimeoutError):
            self._forget_broken(alias)
            return _unavailable(exc)
        if isinstance(exc, TypeError | ValueError):
            return FeedbackValidationError.for_field("item", "the database cannot store it")
        return FeedbackError(f"could not store feedback: {type(exc).__name__}")

    @staticmethod
    def _forget_broken(alias: str) -> None:
        with contextlib.suppress(Exception):  # closing a dead connection may fail too
            connections[alias].close_if_unusable_or_obsolete()

    def _explain(self, alias: str, items: list[FeedbackItem], exc: Exception) -> FeedbackError:
        """Say which constraint a rejected set of items broke (another writer got there first)."""
        if not isinstance(exc, IntegrityError):
            return self._failure(alias, exc)
        rows = AiFeedback.objects.using(alias)
        try:
            found = rows.filter(id__in=[item.id for item in items]).values_list("id", flat=True).first()
            if found is not None:
                return FeedbackValidationError.for_field("id", f"an item with id {found} exists")
            targets = [item.supersedes for item in items if item.supersedes is not None]
            if targets:
                target = (
                    rows.filter(supersedes__in=targets)
                    .values_list("supersedes", flat=True)
                    .first()
                )
                if target is not None:
                    return FeedbackValidationError.for_field(
                        "supersedes", f"item {target} was already superseded"
                    )
        except Exception as lookup_error:
            return self._failure(alias, lookup_error)
        return self._failure(alias, exc)

    # reads

    def _read_seconds(self, *, slow: bool = False) -> float | None:
        return self._seconds(self.using or router.db_for_read(AiFeedback), slow=slow)

    async def _fetch(
        self, queryset: QuerySet[AiFeedback], *, slow: bool = False
    ) -> list[FeedbackItem]:
        """Rows within the connect timeout (``slow``: the statement timeout)."""
        try:
            async with asyncio.timeout(self._read_seconds(slow=slow)):
                rows = [row async for row in queryset.values_list(*ITEM_FIELDS)]
        except (DatabaseError, OSError) as exc:  # TimeoutError is an OSError
            await self._read_failed(exc)
            raise _unavailable(exc) from exc
        return [row_to_item(row) for row in rows]

    async def _read_failed(self, exc: BaseException) -> None:
        if isinstance(exc, DatabaseError):
            alias = self.using or router.db_for_read(AiFeedback)
            await sync_to_async(self._forget_broken, thread_sensitive=True)(alias)

    def _items(self, *conditions: Q, include_history: bool, **filters: Any) -> QuerySet[AiFeedback]:
        queryset = self._rows().filter(*conditions, **filters)
        return queryset if include_history else queryset.filter(is_live=True)

    @staticmethod
    def _newest_first(queryset: QuerySet[AiFeedback]) -> QuerySet[AiFeedback]:
        return queryset.order_by("-created_at", "-id")

    async def get(self, feedback_id: str) -> FeedbackItem | None:
        """The row with this id, live or not."""
        found = await self._fetch(self._rows().filter(id=feedback_id).order_by())
        return found[0] if found else None

    async def history(self, feedback_id: str) -> list[FeedbackItem]:
        """Every version in the chain containing ``feedback_id``, oldest first."""
        root = self._rows().filter(id=feedback_id).values("root_id")
        rows = await self._fetch(self._rows().filter(root_id__in=root).order_by())
        by_target = {item.supersedes: item for item in rows if item.supersedes is not None}
        chain = [item for item in rows if item.supersedes is None]
        while chain and chain[-1].id in by_target:
            chain.append(by_target[chain[-1].id])
        return chain

    async def find_by_session(
        self, session_id: str, *, include_history: bool = False
    ) -> list[FeedbackItem]:
        """Items of one session, newest first."""
        queryset = self._items(include_history=include_history, session_id=session_id)
        return await self._fetch(self._newest_first(queryset))

    async def find_by_trace(
        self, trace_id: str, *, include_history: bool = False
    ) -> list[FeedbackItem]:
        """Items on one trace, newest first."""
        queryset = self._items(include_history=include_history, trace_id=trace_id)
        return await self._fetch(self._newest_first(queryset))

    async def find_by_type(
        self, feedback_type: FeedbackKind, *, limit: int = 100, include_history: bool = False
    ) -> list[FeedbackItem]:
        """Items of one kind, newest first, at most ``limit``."""
        kind = str(normalize_kind(feedback_type))
        queryset = self._items(include_history=include_history, kind=kind)
        return await self._fetch(self._newest_first(queryset)[: max(limit, 0)])

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
        filters: dict[str, Any] = {}
        if type is not None:
            filters["kind"] = str(normalize_kind(type))
        for name, wanted in (
            ("model", model),
            ("session_id", session_id),
            ("user_id", user_id),
            ("trace_id", trace_id),
            ("request_id", request_id),
            ("otel_trace_id", otel_trace_id),
        ):
            if wanted is not None:
                filters[name] = wanted
        if since is not None:
            filters["created_at__gte"] = since
        if until is not None:
            filters["created_at__lt"] = until
        conditions: list[Q] = []
        if cursor:
            moment, last_id = decode_cursor(cursor)
            # (created_at, id) < (moment, last_id), spelled so the index is used
            filters["created_at__lte"] = moment
            conditions.append(Q(created_at__lt=moment) | Q(id__lt=last_id))
        limit = max(limit, 0)
        queryset = self._newest_first(
            self._items(*conditions, include_history=include_history, **filters)
        )
        return Page.from_rows(await self._fetch(queryset[: limit + 1], slow=True), limit)

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
        start, end = window_bounds(window_hours, since, until)
        filters: dict[str, Any] = {"is_live": True, "created_at__gte": start}
        if end is not None:
            filters["created_at__lt"] = end
        if model is not None:
            filters["model"] = model
        if provider is not None:
            filters["provider"] = provider
        queryset = (
            self._rows()
            .filter(**filters)
            .order_by()
            .values("kind")
            .annotate(
                n=Count("id"),
                n_rated=Count("rating"),
                total=Sum("rating"),
                n_up=Count("id", filter=Q(thumbs=1)),
                n_down=Count("id", filter=Q(thumbs=-1)),
            )
        )
        try:
            async with asyncio.timeout(self._read_seconds(slow=True)):
                rows = [row async for row in queryset]
        except (DatabaseError, OSError) as exc:
            await self._read_failed(exc)
            raise _unavailable(exc) from exc
        counts: dict[str, int] = {}
        rated = up = down = 0
        rating_sum = 0.0
        for row in rows:
            counts[row["kind"]] = int(row["n"])
            rated += int(row["n_rated"])
            rating_sum += float(row["total"] or 0.0)
            up += int(row["n_up"] or 0)
            down += int(row["n_down"] or 0)
        average = rating_sum / rated if rated else None
        return FeedbackSummary(sum(counts.values()), average, counts, up, down)

    async def stats(self, query: StatsQuery) -> list[GroupStats]:
        """Stats of the live rows, one ``GROUP BY`` in the database (no rollup here)."""
        from feedback_asgi.integrations.django.stats import django_stats

        try:
            async with asyncio.timeout(self._read_seconds(slow=True)):
                return await django_stats(self._rows(), query)
        except (DatabaseError, OSError) as exc:
            await self._read_failed(exc)
            raise _unavailable(exc) from exc

    async def iter_items(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        batch_size: int = 1000,
        include_history: bool = False,
    ) -> AsyncIterator[FeedbackItem]:
        """Matching items, oldest first, ``batch_size`` rows per short query."""
        batch_size = max(batch_size, 1)
        last: FeedbackItem | None = None
        while True:
            filters: dict[str, Any] = {}
            conditions: list[Q] = []
            if since is not None:
                filters["created_at__gte"] = since
            if until is not None:
                filters["created_at__lt"] = until
            if last is not None:
                conditions.append(Q(created_at__gt=last.created_at)
                                  | Q(created_at=last.created_at, id__gt=last.id))
            queryset = self._items(*conditions, include_history=include_history, **filters)
            batch = await self._fetch(queryset.order_by("created_at", "id")[:batch_size], slow=True)
            for item in batch:
                yield item
            if len(batch) < batch_size:
                return
            last = batch[-1]

    async def ping(self) -> float:
        """Round-trip time of ``SELECT 1`` in milliseconds; raises ``StorageUnavailableError``."""
        alias = self.using or router.db_for_read(AiFeedback)

        def select_one() -> float:
            started = time.perf_counter()
            try:
                with connections[alias].cursor() as cursor:
                    cursor.execute("SELECT 1")
                    cursor.fetchone()
            except (DatabaseError, OSError) as exc:
                self._forget_broken(alias)
                raise _unavailable(exc) from exc
            return (time.perf_counter() - started) * 1000

        try:
            async with asyncio.timeout(self._seconds(alias)):
                elapsed: float = await sync_to_async(select_one, thread_sensitive=True)()
        except TimeoutError as exc:
            raise _unavailable(exc) from exc
        return elapsed

    async def close(self) -> None:
        """Wait for this loop's pending writes (Django owns the connections)."""
        committer = self._committers.pop(asyncio.get_running_loop(), None)
        if committer is not None:
            await committer.wait_idle()
