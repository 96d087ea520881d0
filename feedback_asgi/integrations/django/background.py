"""One background event loop for the I/O a WSGI deployment has no loop for.

Under WSGI every async call runs on a throwaway loop, but a Redis client belongs to the
loop that made it. :class:`LoopExchangeStore` runs every call of the exchange store it
wraps on one daemon thread's loop, and gives the exchange writer a ``put_nowait`` that
never blocks the request thread, so the writer can work synchronously under WSGI and ASGI.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from feedback_asgi.storage.base import ExchangeStoreProtocol
from feedback_asgi.types import Exchange

__all__ = ["BackgroundLoop", "LoopExchangeStore"]

T = TypeVar("T")
logger = logging.getLogger("feedback_asgi")


class BackgroundLoop:
    """A daemon thread running one event loop, started on first use."""

    def __init__(self, name: str = "feedback-asgi-io") -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
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

                threading.Thread(target=run, name=self.name, daemon=True).start()
                ready.wait()
                self._loop = loop
            return self._loop

    async def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Await ``coroutine`` on the background loop from any other loop."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return await asyncio.wrap_future(future)

    def stop(self) -> None:
        """Stop the loop and its thread (a later use starts a new one)."""
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)


class LoopExchangeStore:
    """An exchange store whose calls all run on one :class:`BackgroundLoop`.

    ``put_nowait`` schedules the write and returns at once; at most ``max_pending``
    writes wait at a time, the rest are dropped and counted in ``dropped``.
    """

    def __init__(
        self, inner: ExchangeStoreProtocol, loop: BackgroundLoop, *, max_pending: int = 10_000
    ) -> None:
        self.inner = inner
        self.background = loop
        self.max_pending = max_pending
        self.pending = 0
        self.dropped = 0
        self._lock = threading.Lock()

    def put_nowait(self, exchange: Exchange, ttl: float | None = None) -> None:
        """Schedule ``inner.put(exchange, ttl)`` on the background loop."""
        with self._lock:
            if self.pending >= self.max_pending:
                self.dropped += 1
                return
            self.pending += 1
        future = asyncio.run_coroutine_threadsafe(self.inner.put(exchange, ttl),
                                                  self.background.loop)
        future.add_done_callback(self._done)

    def _done(self, future: Any) -> None:
        with self._lock:
            self.pending -= 1
        if not future.cancelled() and future.exception() is not None:
            logger.warning("feedback-asgi: exchange write failed: %s", future.exception())

    async def put(self, exchange: Exchange, ttl: float | None = None) -> None:
        """Write ``exchange`` and wait for it."""
        await self.background.run(self.inner.put(exchange, ttl))

    async def get(self, trace_id: str) -> Exchange | None:
        """The exchange for ``trace_id``, read on the background loop."""
        return await self.background.run(self.inner.get(trace_id))

    async def ping(self) -> float:
        """The inner store's ping, when it has one (else 0)."""
        ping = getattr(self.inner, "ping", None)
        if ping is None:
            return 0.0
        result: float = await self.background.run(ping())
        return result

    async def close(self) -> None:
        """Close the inner store on the background loop."""
        await self.background.run(self.inner.close())
