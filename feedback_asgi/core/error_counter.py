"""Counting and logging our own failures so they never become the host app's failures.

Every step the library adds to a request (id parsing, signing, teeing, redaction, enqueue)
runs under ``try/except Exception``; the handler calls :meth:`ErrorCounter.record`, which
counts the failure by kind and logs it with its traceback the first time that kind occurs.
"""

from __future__ import annotations

import logging
import threading

__all__ = ["ErrorCounter"]

logger = logging.getLogger("feedback_asgi")


class ErrorCounter:
    """Counts internal failures by kind; logs each kind once (with traceback)."""

    __slots__ = ("_counts", "_lock")

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def record(self, kind: str, exc: BaseException | None = None) -> None:
        """Count one failure of ``kind``; the first of each kind is logged."""
        with self._lock:
            count = self._counts.get(kind, 0) + 1
            self._counts[kind] = count
        if count == 1:
            if exc is not None:
                logger.error(
                    "feedback-asgi internal failure (%s); the request continues unaffected. "
                    "Further failures of this kind are counted, not logged.",
                    kind,
                    exc_info=(type(exc), exc, exc.__traceback__),
                )
            else:
                logger.warning(
                    "feedback-asgi: %s. Further occurrences are counted, not logged.", kind
                )

    def count(self, kind: str) -> int:
        """How many failures of ``kind`` were recorded."""
        return self._counts.get(kind, 0)

    def snapshot(self) -> dict[str, int]:
        """A copy of every count, by kind."""
        with self._lock:
            return dict(self._counts)

    def total(self) -> int:
        """All recorded failures."""
        return sum(self.snapshot().values())
