"""Group commit: concurrent writes gathered into one batch, written in one transaction.

A :class:`GroupCommitter` belongs to one event loop. The first ``submit`` after an idle
period starts a drain task that waits up to ``max_wait`` seconds for companions (or until
``max_batch`` entries are pending), hands the batch to the writer, and keeps going while
entries arrived during the write; then the task ends. No task outlives the work, so
nothing stays bound to a loop that has finished.

With a ``timeout``, every caller is answered within that many seconds of its ``submit``:
its batch is written under the deadline of the earliest caller in it, and a batch that
misses it fails as a whole, at once, for every caller in it and every caller that
queued behind it before that deadline (they would only wait for a database that just
proved silent; callers after it start a new batch, so recovery is not delayed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Generic, NamedTuple, TypeVar

__all__ = ["GroupCommitter"]

T = TypeVar("T")
R = TypeVar("R")

logger = logging.getLogger("feedback_asgi.storage")


class _Waiter(NamedTuple, Generic[T, R]):
    entry: T
    future: asyncio.Future[R]
    arrived: float
    """``loop.time()`` of the ``submit``."""
    deadline: float | None


class GroupCommitter(Generic[T, R]):
    """Batches ``submit(entry)`` calls for ``write(entries) -> outcomes``.

    ``write`` returns one outcome per entry, in order, and should not raise; if it does
    (or the drain task is cancelled), every caller in that batch and after it gets
    ``on_failure(exception)``. A caller whose ``submit`` was cancelled, or whose deadline
    passed, before its batch was taken is left out of the batch.

    ``timeout`` (seconds, ``None``: no limit) bounds each caller's wait from its
    ``submit``; a caller past it gets ``on_failure(TimeoutError)``, and so does every
    caller of a batch whose write is cancelled at the deadline of its earliest caller.
    """

    def __init__(
        self,
        write: Callable[[list[T]], Awaitable[list[R]]],
        *,
        max_batch: int,
        max_wait: float,
        on_failure: Callable[[BaseException], R],
        timeout: float | None = None,
    ) -> None:
        self._write = write
        self.max_batch = max(1, max_batch)
        self.max_wait = max(0.0, max_wait)
        self.timeout = timeout
        """Seconds a caller may wait for its outcome (``None``: no limit)."""
        self._on_failure = on_failure
        self._pending: list[_Waiter[T, R]] = []
        self._latest = -math.inf  # the latest deadline submitted so far
        self._task: asyncio.Task[None] | None = None
        self._full: asyncio.Event | None = None
        self.batches = 0
        """Batches written so far."""
        self.entries = 0
        """Entries written so far."""

    async def submit(self, entry: T, *, deadline: float | None = None) -> R:
        """Queue ``entry``; return its outcome once its batch has been written.

        ``deadline`` (``loop.time()`` by which an answer is due) defaults to ``timeout``
        seconds from now; past it the outcome is ``on_failure(TimeoutError)``.
        """
        loop = asyncio.get_running_loop()
        now = loop.time()
        if deadline is None and self.timeout is not None:
            deadline = now + self.timeout
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append(_Waiter(entry, future, now, deadline))
        if self._task is None:
            self._task = loop.create_task(self._drain())
        elif self._full is not None and len(self._pending) >= self.max_batch:
            self._full.set()
        due = math.inf if deadline is None else deadline
        if due >= self._latest:
            # No caller ahead has a later deadline (or none at all), so every batch up to
            # and including this caller's ends by this one: it needs no timer of its own.
            self._latest = due
            return await future
        try:
            async with asyncio.timeout_at(deadline):
                return await future
        except TimeoutError:
            return self._on_failure(_late())

    async def wait_idle(self) -> None:
        """Return once every entry submitted so far has its outcome."""
        while self._task is not None:
            await asyncio.shield(self._task)

    async def _drain(self) -> None:
        batch: list[_Waiter[T, R]] = []
        try:
            first = True
            while self._pending:
                if first and self.max_wait > 0 and len(self._pending) < self.max_batch:
                    self._full = asyncio.Event()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.max_wait):
                            await self._full.wait()
                    self._full = None
                first = False
                taken = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                batch = [waiter for waiter in taken if not waiter.future.done()]
                if not batch:
                    continue
                deadlines = [w.deadline for w in batch if w.deadline is not None]
                deadline = min(deadlines, default=None)
                self.batches += 1
                self.entries += len(batch)
                try:
                    async with asyncio.timeout_at(deadline):
                        outcomes = await self._write([waiter.entry for waiter in batch])
                except TimeoutError:
                    # the writer did not finish in time: the callers queued before the
                    # deadline fail with this batch rather than each wait for it again
                    cutoff = asyncio.get_running_loop().time() if deadline is None else deadline
                    batch += [w for w in self._pending if w.arrived <= cutoff]
                    self._pending = [w for w in self._pending if w.arrived > cutoff]
                    outcomes = [self._on_failure(_late())] * len(batch)
                except Exception as exc:
                    logger.exception("group commit: batch writer failed")
                    outcomes = [self._on_failure(exc)] * len(batch)
                for waiter, outcome in zip(batch, outcomes, strict=True):
                    if not waiter.future.done():
                        waiter.future.set_result(outcome)
                batch = []
        except BaseException as exc:  # cancelled (loop shutting down): nobody may wait forever
            for waiter in [*batch, *self._pending]:
                if not waiter.future.done():
                    waiter.future.set_result(self._on_failure(exc))
            self._pending.clear()
            raise
        finally:
            self._task = None
            self._full = None


def _late() -> TimeoutError:
    return TimeoutError("no answer before the deadline")
