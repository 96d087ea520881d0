"""One background event loop for the I/O a WSGI deployment has no loop for.

Under WSGI every async call runs on a throwaway loop, but a Redis client belongs to the
loop that made it. :class:`LoopExchangeStore` runs every call of the exchange store it
wraps on one daemon thread's loop, and gives the exchange writer a ``put_nowait`` that
never blocks the request thread, so the writer can work synchronously under WSGI and ASGI.
Behind ``put_nowait``, an :class:`~feedback_asgi.capture.writer.ExchangeWriter` on the
background loop does the writing: bounded, and retried when Redis fails.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Coroutine
from typing import Any, TypeVar

from feedback_asgi.capture.writer import ExchangeWriter
from feedback_asgi.core.records import Exchange
from feedback_asgi.storage.base import ExchangeStoreProtocol

__all__ = ["BackgroundLoop", "LoopExchangeStore"]

T = TypeVar("T")
logger = logging.getLogger("feedback_asgi")


class BackgroundLoop:
    """A daemon thread running one event loop, started on first use."""

    def __init__(self, name: str = "feedback-asgi-io") -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop (started if needed)."""
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                thread = threading.Thread(target=run, name=self.name, daemon=True)
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    async def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Await ``coroutine`` on the background loop from any other loop."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return await asyncio.wrap_future(future)

    def stop(self, max_wait: float = 5.0) -> None:
        """Stop the loop and its thread, then close the loop (a later use starts a new one)."""
        with self._lock:
            loop, self._loop = self._loop, None
            thread, self._thread = self._thread, None
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None and thread is not threading.current_thread():
            thread.join(max_wait)
            if not thread.is_alive():
                loop.close()


class LoopExchangeStore:
    """An exchange store whose calls all run on one :class:`BackgroundLoop`.

    ``put_nowait`` queues the exchange for :attr:`writer` on the background loop and returns
    at once (one loop wake-up per batch); the hand-over queue and the writer each hold at
    most ``max_pending`` exchanges (oldest dropped, counted in ``dropped``), and the writer
    retries writes the inner store could not make.
    """

    def __init__(
        self, inner: ExchangeStoreProtocol, loop: BackgroundLoop, *, max_pending: int = 10_000
    ) -> None:
        self.inner = inner
        self.background = loop
        self.max_pending = max_pending
        self.writer = ExchangeWriter(inner, maxsize=max_pending)
        """The writer on the background loop (its counters: written, failed, retries)."""
        self._handoff: deque[tuple[Exchange, float | None]] = deque()
        self._handoff_dropped = 0
        self._handing = 0
        self._wake_scheduled = False
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        """Exchanges handed over and not yet written (or given up)."""
        return len(self._handoff) + self._handing + self.writer.pending

    @property
    def dropped(self) -> int:
        """Exchanges pushed out of a full queue (the writer's or the hand-over's)."""
        return self.writer.dropped + self._handoff_dropped

    def put_nowait(self, exchange: Exchange, ttl: float | None = None) -> None:
        """Queue ``exchange`` for the background writer (kept for ``ttl`` seconds).

        One wake-up of the background loop serves every exchange queued until it runs:
        waking another thread per request would cost each request a thread switch.
        """
        with self._lock:
            handoff = self._handoff
            if len(handoff) >= self.max_pending:
                handoff.popleft()
                self._handoff_dropped += 1
            handoff.append((exchange, ttl))
            if self._wake_scheduled:
                return
            self._wake_scheduled = True
        self.background.loop.call_soon_threadsafe(self._hand_over)

    def _hand_over(self) -> None:
        with self._lock:
            batch, self._handoff = self._handoff, deque()
            self._wake_scheduled = False
            self._handing = len(batch)  # still pending while it moves to the writer
        writer = self.writer
        for exchange, ttl in batch:
            if ttl is not None:
                writer.ttl = ttl  # the kit passes the same TTL with every exchange
            writer.put_nowait(exchange)
        with self._lock:
            self._handing = 0

    async def put(self, exchange: Exchange, ttl: float | None = None) -> bool | None:
        """Write ``exchange`` and wait for it (the inner store's answer)."""
        return await self.background.run(self.inner.put(exchange, ttl))

    async def get(self, trace_id: str) -> Exchange | None:
        """The exchange for ``trace_id`` (one still queued for writing first), read on the
        background loop."""
        return await self.background.run(self._get(trace_id))

    async def _get(self, trace_id: str) -> Exchange | None:
        with self._lock:
            handed = [e for e, _ in self._handoff if e.trace_id == trace_id]
        if handed:
            return handed[-1]
        queued = self.writer.find(trace_id)
        if queued is not None:
            return queued
        return await self.inner.get(trace_id)

    async def ping(self) -> float:
        """The inner store's ping, when it has one (else 0)."""
        ping = getattr(self.inner, "ping", None)
        if ping is None:
            return 0.0
        result: float = await self.background.run(ping())
        return result

    async def close(self) -> None:
        """Drain the writer (bounded), then close the inner store, on the background loop."""
        await self.background.run(self._close())

    async def _close(self) -> None:
        self._hand_over()
        await self.writer.stop()
        await self.inner.close()
