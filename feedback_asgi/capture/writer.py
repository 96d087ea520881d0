"""The exchange writer: gets captured exchanges into the exchange store off the request path.

:meth:`ExchangeWriter.put_nowait` runs once the response has been sent. A store in this
process (the in-memory one) keeps the capture at once, frozen: credential headers are
dropped then, bodies are decoded and redacted only if the exchange is ever read. For any
other store it appends to a bounded queue (when full, the oldest entry is dropped and
counted) and, if the drainer sleeps, schedules its wake-up :data:`BATCH_DELAY_SECONDS`
later, so one wake-up serves a whole batch. A background task, started lazily on the
running event loop (and started again if the loop changes, as it does between tests),
turns queued entries into redacted :class:`~feedback_asgi.core.records.Exchange` objects and
writes them.

The drainer writes up to :data:`WRITE_BATCH_MAX` exchanges at a time: a store with a
``put_many`` method (``RedisExchangeStore``: one pipeline) gets them in one call, so a
backlog, after an outage or on a busy event loop, drains in a few round trips instead of
one per exchange. A write that fails (the store raises, or answers ``False`` as
``RedisExchangeStore`` does) is not lost: the drainer keeps those exchanges (still found
by :meth:`find`) and tries again with a backoff from :data:`RETRY_FIRST_SECONDS` to
:data:`RETRY_MAX_SECONDS`, while new entries queue behind it (the queue's capacity still
bounds memory). It gives up, counted in ``failed``, only once the exchange is older than
its TTL: it would have expired anyway. Nothing is ever raised to the request path.
:meth:`stop` drains what is queued, retries included, bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import Protocol, runtime_checkable

from feedback_asgi.core.error_counter import ErrorCounter
from feedback_asgi.core.records import Exchange, utc_now
from feedback_asgi.storage.base import ExchangeStoreProtocol

__all__ = ["ExchangeWriter", "PendingExchange"]

logger = logging.getLogger("feedback_asgi")

BATCH_DELAY_SECONDS = 0.02
"""How long the drainer lets exchanges gather after the first one wakes it."""
WRITE_BATCH_MAX = 128
"""The most exchanges one write carries (a store with ``put_many``: one round trip)."""
RETRY_FIRST_SECONDS = 0.05
"""The wait before the first retry of a failed write; doubled after each failure."""
RETRY_MAX_SECONDS = 1.0
"""The longest wait between two tries of a write."""
DEFAULT_TTL_SECONDS = 86_400.0
"""The give-up bound when neither the writer nor the store names a TTL."""


@runtime_checkable
class PendingExchange(Protocol):
    """Something that becomes an exchange once finished (an ``ExchangeCapture``)."""

    trace_id: str

    def to_exchange(self) -> Exchange:
        """The finished, redacted exchange."""
        ...


class ExchangeWriter:
    """A bounded queue in front of an exchange store, drained by one background task.

    ``synchronous=True`` writes at once when the store has a ``put_nowait`` method (the
    in-memory store): no task at all, for tests. Counters: ``written``, ``failed`` (given
    up), ``dropped`` (pushed out of a full queue), ``retries`` (failed tries retried).
    """

    __slots__ = (
        "_busy",
        "_event",
        "_failing",
        "_idle",
        "_in_process",
        "_inflight",
        "_keep_frozen",
        "_loop",
        "_put_many",
        "_queue",
        "_task",
        "_waiting",
        "dropped",
        "errors",
        "failed",
        "maxsize",
        "retries",
        "store",
        "synchronous",
        "ttl",
        "written",
    )

    def __init__(
        self,
        store: ExchangeStoreProtocol,
        *,
        maxsize: int = 10_000,
        ttl: float | None = None,
        errors: ErrorCounter | None = None,
        synchronous: bool = False,
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.store = store
        self.maxsize = maxsize
        self.ttl = ttl
        self.errors = errors if errors is not None else ErrorCounter()
        self.synchronous = synchronous
        self.dropped = 0
        self.written = 0
        self.failed = 0
        self.retries = 0
        self._inflight: list[Exchange] = []
        self._failing = False
        self._queue: deque[Exchange | PendingExchange] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._event: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._waiting = False
        self._busy = False
        self._in_process = bool(getattr(store, "accepts_pending", False))
        self._keep_frozen: Callable[..., None] | None = (
            getattr(store, "put_frozen", None) if self._in_process else None
        )
        self._put_many: Callable[..., Awaitable[bool | None]] | None = getattr(
            store, "put_many", None
        )

    # the request path

    def put_nowait(self, item: Exchange | PendingExchange) -> None:
        """Queue ``item`` for writing; never blocks, never raises for a full queue."""
        if self.synchronous and self._write_now(item):
            return
        if self._in_process and not isinstance(item, Exchange):
            # a store in this process keeps it as it is: cheaper now, after the response
            # has been sent, than a queue and a wake-up of the drainer later
            try:
                if self._keep_pending(item):
                    return
            except Exception as exc:
                self.failed += 1
                self.errors.record("exchange_write", exc)
                return
        queue = self._queue
        if len(queue) >= self.maxsize:
            queue.popleft()
            self.dropped += 1
        queue.append(item)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._wake_from_thread()
            return
        if loop is not self._loop or self._task is None or self._task.done():
            self._start_on(loop)
        elif self._waiting:
            # one wake-up per batch: the drainer runs once for everything queued meanwhile
            self._waiting = False
            assert self._event is not None
            loop.call_later(BATCH_DELAY_SECONDS, self._event.set)

    def _write_now(self, item: Exchange | PendingExchange) -> bool:
        put_nowait = getattr(self.store, "put_nowait", None)
        if put_nowait is None:
            return False
        try:
            exchange = item if isinstance(item, Exchange) else item.to_exchange()
            put_nowait(exchange, self.ttl)
            self.written += 1
        except Exception as exc:
            self.failed += 1
            self.errors.record("exchange_write", exc)
        return True

    def _wake_from_thread(self) -> None:
        loop, event = self._loop, self._event
        if loop is not None and event is not None and loop.is_running() and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    # lifecycle

    @property
    def depth(self) -> int:
        """Entries waiting to be written."""
        return len(self._queue)

    @property
    def pending(self) -> int:
        """Entries not written yet: those queued and those being written or retried."""
        return len(self._queue) + len(self._inflight)

    @property
    def alive(self) -> bool:
        """Whether the drainer task runs on the current event loop."""
        task = self._task
        if task is None or task.done():
            return False
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return True

    def _start_on(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event = asyncio.Event()
        self._idle = asyncio.Event()
        self._waiting = False
        self._busy = False
        self._task = loop.create_task(self._drain(), name="feedback-asgi exchange writer")

    async def start(self) -> None:
        """Start the drainer on the running loop (idempotent; ``put_nowait`` also does it)."""
        if self.synchronous and hasattr(self.store, "put_nowait"):
            return
        loop = asyncio.get_running_loop()
        if loop is not self._loop or self._task is None or self._task.done():
            self._start_on(loop)

    async def flush(self, max_wait: float = 5.0) -> bool:
        """Wait until every queued entry is written (or failed); ``False`` after ``max_wait`` seconds."""
        if not self._queue and not self._busy:
            return True
        await self.start()
        assert self._event is not None
        assert self._idle is not None
        self._idle.clear()
        self._waiting = False
        self._event.set()
        try:
            async with asyncio.timeout(max_wait):
                while self._queue or self._busy:
                    await self._idle.wait()
                    self._idle.clear()
        except TimeoutError:
            return False
        return True

    async def stop(self, max_wait: float = 5.0) -> None:
        """Write what is queued (at most ``max_wait`` seconds), then stop the drainer."""
        task = self._task
        if task is None:
            return
        current_loop = asyncio.get_running_loop() is self._loop
        if current_loop and not task.done():
            drained = await self.flush(max_wait)
            if not drained:
                logger.warning(
                    "feedback-asgi: %d exchanges not written within %.1fs of shutdown",
                    self.pending, max_wait,
                )
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None

    async def _drain(self) -> None:
        event, idle = self._event, self._idle
        assert event is not None
        assert idle is not None
        queue = self._queue
        while True:
            if not queue:
                self._busy = False
                idle.set()
                self._waiting = True
                event.clear()
                await event.wait()
                continue
            self._busy = True
            batch = self._take_batch()
            if not batch:
                continue
            self._inflight = batch
            try:
                await self._write(batch)
            finally:
                self._inflight = []

    def _take_batch(self) -> list[Exchange]:
        """Up to :data:`WRITE_BATCH_MAX` queued entries, finished as exchanges."""
        queue = self._queue
        batch: list[Exchange] = []
        while queue and len(batch) < WRITE_BATCH_MAX:
            item = queue.popleft()
            try:
                if isinstance(item, Exchange):
                    batch.append(item)
                elif not self._keep_pending(item):
                    batch.append(item.to_exchange())
            except Exception as exc:
                self.failed += 1
                self.errors.record("exchange_write", exc)
        return batch

    async def _write(self, batch: list[Exchange]) -> None:
        """Write ``batch``, retrying what failed with a backoff until kept or expired."""
        delay = RETRY_FIRST_SECONDS
        ttls: list[float | None] = [self.ttl] * len(batch)
        give_up_at: list[float] | None = None
        while True:
            failed, error = await self._try(batch, ttls)
            self.written += len(batch) - len(failed)
            if not failed:
                if self._failing:
                    self._failing = False
                    logger.info("feedback-asgi: exchange writes succeed again")
                return
            if not self._failing:  # once per outage; a store like Redis's logs its own
                self._failing = True
                logger.warning("feedback-asgi: exchange write failed (%r); retrying", error)
            now = time.monotonic()
            if give_up_at is None:
                give_up_at = [now + self._lifetime_left(exchange) for exchange in batch]
            still = [index for index in failed if now + delay < give_up_at[index]]
            for _ in range(len(failed) - len(still)):
                self.failed += 1
                self.errors.record("exchange_write", error)
            if not still:
                return
            batch = [batch[index] for index in still]
            give_up_at = [give_up_at[index] for index in still]
            self._inflight = batch
            self.retries += len(batch)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)
            now = time.monotonic()
            # each expires when it would have, had its first write succeeded
            ttls = [max(deadline - now, 0.001) for deadline in give_up_at]

    async def _try(
        self, batch: list[Exchange], ttls: list[float | None]
    ) -> tuple[list[int], Exception | None]:
        """One try at writing ``batch``: the indexes that failed, and the last error.

        A store with ``put_many`` gets the whole batch in one call (Redis: one pipeline,
        one round trip, however long the backlog); any other store one ``put`` each.
        """
        put_many = self._put_many
        if put_many is not None:
            try:
                kept = await put_many(list(zip(batch, ttls, strict=True)))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                return list(range(len(batch))), exc
            return ([] if kept is not False else list(range(len(batch)))), None
        failed: list[int] = []
        error: Exception | None = None
        for index, (exchange, ttl) in enumerate(zip(batch, ttls, strict=True)):
            try:
                kept = await self.store.put(exchange, ttl)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                kept, error = False, exc
            if kept is False:
                failed.append(index)
        return failed, error

    def _lifetime_left(self, exchange: Exchange) -> float:
        """Seconds until ``exchange`` would expire had its first write succeeded."""
        ttl = self.ttl
        if ttl is None:
            ttl = float(getattr(self.store, "default_ttl", DEFAULT_TTL_SECONDS))
        created = exchange.created_at
        if created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
        age = (utc_now() - created).total_seconds()
        return ttl - min(max(age, 0.0), ttl)

    def _keep_pending(self, item: PendingExchange) -> bool:
        """Hand ``item`` to a store that builds exchanges on first read, if it is one.

        ``prepare()`` still runs here (``freeze()`` calls it), so credential headers are
        gone and the app's values copied before the store keeps it; decoding the bodies
        and redacting JSON fields in them wait for the first read.
        """
        if not self._in_process:
            return False
        freeze = getattr(item, "freeze", None)
        if freeze is not None and self._keep_frozen is not None:  # freeze() prepares first
            self._keep_frozen(item.trace_id, freeze(), item.thaw, self.ttl)  # type: ignore[attr-defined]
        else:
            prepare = getattr(item, "prepare", None)
            if prepare is None:
                return False
            prepare()
            self.store.put_pending(item, self.ttl)  # type: ignore[attr-defined]
        self.written += 1
        return True

    def find(self, trace_id: str) -> Exchange | None:
        """A queued, not yet written exchange for ``trace_id`` (the first queued), if any."""
        for exchange in self._inflight:
            if exchange.trace_id == trace_id:
                return exchange
        for item in self._queue:
            if item.trace_id == trace_id:
                try:
                    return item if isinstance(item, Exchange) else item.to_exchange()
                except Exception as exc:
                    self.errors.record("exchange_write", exc)
                    return None
        return None
