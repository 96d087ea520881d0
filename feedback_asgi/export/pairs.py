"""Preference pairs from votes on different answers to the same prompt, in bounded memory.

Votes (an up and a down, from thumbs or ratings) are only comparable when they answer the
same prompt, and the prompts arrive in time order. So each vote is written as one text
line ``<sha256 of the prompt>\\t<time>\\t<json>`` into sorted runs of at most
``run_bytes`` (kept in memory while there is one run, spilled to anonymous temporary
files after that) and the runs are merged (``heapq.merge``): the votes come back grouped
by prompt, oldest first inside a prompt.

Pairing inside a prompt: a vote takes the oldest waiting vote of the opposite direction
whose answer differs from its own (the up-voted answer is ``chosen``); otherwise it waits.
At most ``max_pending`` votes per direction wait per prompt; others, and every vote left
waiting at the end, count as ``unpaired``.

Memory bound: one run (``run_bytes``, 16 MiB by default) plus one line per run while
merging plus ``2 * max_pending`` votes of the current prompt; disk: the votes' lines.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import json
import tempfile
from collections import deque
from collections.abc import Iterator
from typing import IO

from feedback_asgi.core.records import FeedbackItem
from feedback_asgi.export.exchange import Message, compact_json
from feedback_asgi.export.options import ExportReport

__all__ = ["VoteSpill", "pair_votes"]

RUN_BYTES = 16 * 1024 * 1024
MAX_PENDING = 1000

Pair = tuple[list[Message], str, str]


class VoteSpill:
    """Votes collected in sorted runs; :meth:`sorted_lines` merges them back."""

    def __init__(self, *, run_bytes: int | None = None) -> None:
        self.run_bytes = run_bytes or RUN_BYTES
        self._buffer: list[str] = []
        self._buffered = 0
        self._runs: list[IO[str]] = []

    @property
    def runs(self) -> int:
        """How many runs went to disk so far."""
        return len(self._runs)

    async def add(self, item: FeedbackItem, sign: int, prompt: list[Message], answer: str) -> None:
        """Keep one vote (``sign`` +1 or -1) on ``answer`` to ``prompt``."""
        canonical = json.dumps(prompt, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        key = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        stamp = item.created_at.strftime("%Y%m%d%H%M%S%f")
        line = f"{key}\t{stamp}\t{compact_json([item.id, sign, prompt, answer])}\n"
        self._buffer.append(line)
        self._buffered += len(line)
        if self._buffered >= self.run_bytes:
            await asyncio.to_thread(self._spill)

    def _spill(self) -> None:
        self._buffer.sort()
        run = tempfile.TemporaryFile("w+", encoding="utf-8", newline="\n")  # noqa: SIM115
        run.writelines(self._buffer)
        run.seek(0)
        self._runs.append(run)
        self._buffer = []
        self._buffered = 0

    def sorted_lines(self) -> Iterator[str]:
        """Every vote line, sorted (prompt, time, id)."""
        if not self._runs:
            self._buffer.sort()
            yield from self._buffer
            return
        if self._buffer:
            self._spill()
        yield from heapq.merge(*self._runs)

    def close(self) -> None:
        """Delete the runs."""
        for run in self._runs:
            run.close()
        self._runs = []
        self._buffer = []


def pair_votes(
    lines: Iterator[str], report: ExportReport, *, max_pending: int = MAX_PENDING
) -> Iterator[Pair]:
    """``(prompt, chosen, rejected)`` for the sorted vote lines, prompt by prompt."""
    key: str | None = None
    waiting: dict[int, deque[str]] = {1: deque(), -1: deque()}
    for line in lines:
        line_key, _, rest = line.partition("\t")
        if line_key != key:
            report.skipped["unpaired"] += len(waiting[1]) + len(waiting[-1])
            waiting = {1: deque(), -1: deque()}
            key = line_key
        _item_id, sign, prompt, answer = json.loads(rest.partition("\t")[2])
        opposite = waiting[-sign]
        match = next((i for i, other in enumerate(opposite) if other != answer), None)
        if match is not None:
            other = opposite[match]
            del opposite[match]
            yield (prompt, answer, other) if sign > 0 else (prompt, other, answer)
        elif len(waiting[sign]) < max_pending:
            waiting[sign].append(answer)
        else:
            report.skipped["unpaired"] += 1
    report.skipped["unpaired"] += len(waiting[1]) + len(waiting[-1])
