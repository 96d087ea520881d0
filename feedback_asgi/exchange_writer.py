"""The exchange writer: gets captured exchanges into the exchange store off the request path.

The request path calls :meth:`ExchangeWriter.put_nowait`, which appends to a bounded queue
(when full, the oldest entry is dropped and counted) and, if the drainer sleeps, schedules
its wake-up :data:`BATCH_DELAY_SECONDS` later, so one wake-up serves a whole batch;
nothing else. A background task, started lazily on the running event loop (and started
again if the loop changes, as it does between tests), turns each entry into an
:class:`~feedback_asgi.types.Exchange` (redaction happens here) and writes it.

A write that fails (the store raises, or answers ``False`` as ``RedisExchangeStore``
does) is not lost: the drainer keeps that exchange (still found by :meth:`find`) and
tries again with a backoff from :data:`RETRY_FIRST_SECONDS` to :data:`RETRY_MAX_SECONDS`,
while new entries queue behind it (the queue's capacity still bounds memory). It gives
up, counted in ``failed``, only once the exchange is older than its TTL: it would have
expired anyway. Nothing is ever raised to the request path. :meth:`stop` drains what is
queued, retries included, bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC
from typing import Protocol, runtime_checkable

from feedback_asgi.failsafe import ErrorCounter
from feedback_asgi.storage.base import ExchangeStoreProtocol
from feedback_asgi.types import Exchange, utc_now

__all__ = ["ExchangeWriter", "PendingExchange"]

logger = logging.getLogger("feedback_asgi")

BATCH_DELAY_SECONDS = 0.02
"""How long the drainer lets exchanges gather after the first one wakes it."""
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
        "_current",
        "_event",
        "_failing",
        "_idle",
        "_in_process",
        "_keep_frozen",
        "_loop",
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
        self._current: Exchange | None = None
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
        """Entries not written yet: those queued and the one being written or retried."""
        return len(self._queue) + (self._current is not None)

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
            item = queue.popleft()
            self._busy = True
            try:
                if not isinstance(item, Exchange) and self._keep_pending(item):
                    continue
                exchange = item if isinstance(item, Exchange) else item.to_exchange()
            except Exception as exc:
                self.failed += 1
                self.errors.record("exchange_write", exc)
                continue
            self._current = exchange
            try:
                await self._write(exchange)
            finally:
                self._current = None

    async def _write(self, exchange: Exchange) -> None:
        """Write ``exchange``, retrying with a backoff until it is kept or has expired."""
        ttl = self.ttl
        delay = RETRY_FIRST_SECONDS
        give_up_at: float | None = None
        while True:
            error: Exception | None = None
            try:
                kept = await self.store.put(exchange, ttl)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                kept, error = False, exc
            if kept is not False:
                self.written += 1
                if self._failing:
                    self._failing = False
                    logger.info("feedback-asgi: exchange writes succeed again")
                return
            if not self._failing:  # once per outage; a store like Redis's logs its own
                self._failing = True
                logger.warning("feedback-asgi: exchange write failed (%r); retrying", error)
            now = time.monotonic()
            if give_up_at is None:
                give_up_at = now + self._lifetime_left(exchange)
            if now + delay >= give_up_at:
                self.failed += 1
                self.errors.record("exchange_write", error)
                return
            self.retries += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)
            ttl = max(give_up_at - time.monotonic(), 0.001)  # expires when it would have

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

        ``prepare()`` still runs here, so credentials and anything to redact are gone
        before the store keeps it; only decoding of bodies with nothing to redact waits.
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
        """A queued, not yet written exchange for ``trace_id`` (newest first), if any."""
        current = self._current
        for item in reversed(self._queue):
            if item.trace_id == trace_id:
                try:
                    return item if isinstance(item, Exchange) else item.to_exchange()
                except Exception as exc:
                    self.errors.record("exchange_write", exc)
                    return None
        if current is not None and current.trace_id == trace_id:
            return current
        return None
