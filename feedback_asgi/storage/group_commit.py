"""Group commit: concurrent writes gathered into one batch, written in one transaction.

A :class:`GroupCommitter` belongs to one event loop. The first ``submit`` after an idle
period starts a drain task that waits up to ``max_wait`` seconds for companions (or until
``max_batch`` entries are pending), hands the batch to the writer, and keeps going while
entries arrived during the write; then the task ends. No task outlives the work, so
nothing stays bound to a loop that has finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["GroupCommitter"]

T = TypeVar("T")
R = TypeVar("R")

logger = logging.getLogger("feedback_asgi.storage")


class GroupCommitter(Generic[T, R]):
    """Batches ``submit(entry)`` calls for ``write(entries) -> outcomes``.

    ``write`` returns one outcome per entry, in order, and should not raise; if it does
    (or the drain task is cancelled), every caller in that batch and after it gets
    ``on_failure(exception)``. A caller whose ``submit`` was cancelled before its batch
    was taken is left out of the batch.
    """

    def __init__(
        self,
        write: Callable[[list[T]], Awaitable[list[R]]],
        *,
        max_batch: int,
        max_wait: float,
        on_failure: Callable[[BaseException], R],
    ) -> None:
        self._write = write
        self.max_batch = max(1, max_batch)
        self.max_wait = max(0.0, max_wait)
        self._on_failure = on_failure
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None
        self._full: asyncio.Event | None = None
        self.batches = 0
        """Batches written so far."""
        self.entries = 0
        """Entries written so far."""

    async def submit(self, entry: T) -> R:
        """Queue ``entry``; return its outcome once its batch has been written."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((entry, future))
        if self._task is None:
            self._task = loop.create_task(self._drain())
        elif self._full is not None and len(self._pending) >= self.max_batch:
            self._full.set()
        return await future

    async def wait_idle(self) -> None:
        """Return once every entry submitted so far has its outcome."""
        while self._task is not None:
            await asyncio.shield(self._task)

    async def _drain(self) -> None:
        batch: list[tuple[T, asyncio.Future[R]]] = []
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
                batch = [(entry, future) for entry, future in taken if not future.done()]
                if not batch:
                    continue
                try:
                    outcomes = await self._write([entry for entry, _ in batch])
                except Exception as exc:
                    logger.exception("group commit: batch writer failed")
                    outcomes = [self._on_failure(exc)] * len(batch)
                self.batches += 1
                self.entries += len(batch)
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if not future.done():
                        future.set_result(outcome)
                batch = []
        except BaseException as exc:  # cancelled (loop shutting down): nobody may wait forever
            for _, future in [*batch, *self._pending]:
                if not future.done():
                    future.set_result(self._on_failure(exc))
            self._pending.clear()
            raise
        finally:
            self._task = None
            self._full = None
