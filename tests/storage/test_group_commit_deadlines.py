"""Group commit with a deadline: every caller is answered within ``timeout`` of its submit.

A batch whose write misses the deadline of its earliest caller fails as a whole, at once,
for everyone in it and everyone who queued behind it before then; a caller arriving after
that starts a new batch, so a writer that works again is used again at once.
"""

from __future__ import annotations

import asyncio
import time

from feedback_asgi.storage.group_commit import GroupCommitter

TIMEOUT = 0.3
SLACK = 0.1


class Writer:
    """Writes ``ok<entry>``; while ``stuck`` it never finishes (and notes its cancellation)."""

    def __init__(self) -> None:
        self.stuck = True
        self.batches: list[list[int]] = []
        self.cancelled = 0

    async def __call__(self, entries: list[int]) -> list[str]:
        self.batches.append(entries)
        if self.stuck:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        return [f"ok{entry}" for entry in entries]


def committer(writer: Writer) -> GroupCommitter[int, str]:
    return GroupCommitter(
        writer,
        max_batch=100,
        max_wait=0.001,
        on_failure=lambda exc: f"failed:{type(exc).__name__}",
        timeout=TIMEOUT,
    )


async def answered(commit: GroupCommitter[int, str], entry: int) -> tuple[float, str]:
    """The outcome of ``entry`` and when it came (``time.monotonic()``)."""
    outcome = await commit.submit(entry)
    return time.monotonic(), outcome


async def test_a_batch_past_its_deadline_fails_at_once_for_every_caller() -> None:
    writer = Writer()
    commit = committer(writer)
    started = time.monotonic()
    first = [asyncio.create_task(answered(commit, n)) for n in range(10)]
    await asyncio.sleep(TIMEOUT / 3)  # the batch is being written: these queue behind it
    queued = [asyncio.create_task(answered(commit, n)) for n in range(10, 15)]
    results = await asyncio.gather(*first, *queued)

    assert [outcome for _, outcome in results] == ["failed:TimeoutError"] * 15
    times = [when - started for when, _ in results]
    # one deadline for all: the earliest caller's, not each caller's own (later) one
    assert max(times) - min(times) < SLACK / 2, times
    assert TIMEOUT - SLACK / 2 < max(times) < TIMEOUT + SLACK, times
    assert writer.batches == [list(range(10))]  # the queued ones were never written
    assert writer.cancelled == 1
    await commit.wait_idle()


async def test_after_a_failed_batch_the_next_caller_gets_a_new_one() -> None:
    writer = Writer()
    commit = committer(writer)
    assert await commit.submit(1) == "failed:TimeoutError"
    writer.stuck = False
    started = time.monotonic()
    assert await asyncio.gather(*(commit.submit(n) for n in (2, 3))) == ["ok2", "ok3"]
    assert time.monotonic() - started < SLACK
    assert writer.batches == [[1], [2, 3]]


async def test_a_caller_past_its_deadline_is_left_out_of_the_next_batch() -> None:
    batches: list[list[int]] = []
    release = asyncio.Event()

    async def slow_then_fine(entries: list[int]) -> list[str]:
        batches.append(entries)
        await release.wait()
        return [f"ok{entry}" for entry in entries]

    commit: GroupCommitter[int, str] = GroupCommitter(
        slow_then_fine, max_batch=100, max_wait=0.001,
        on_failure=lambda exc: f"failed:{type(exc).__name__}", timeout=TIMEOUT,
    )
    loop = asyncio.get_running_loop()
    head = asyncio.create_task(commit.submit(1, deadline=loop.time() + 10))
    await asyncio.sleep(0.01)  # batch [1] is being written
    late = await commit.submit(2, deadline=loop.time() + 0.05)  # queued, then gives up
    assert late == "failed:TimeoutError"
    release.set()
    assert await head == "ok1"
    await commit.wait_idle()
    assert batches == [[1]]  # 2 gave up before its batch was taken: never written


async def test_without_a_timeout_nothing_changes() -> None:
    async def write(entries: list[int]) -> list[str]:
        await asyncio.sleep(0.05)
        return [f"ok{entry}" for entry in entries]

    commit: GroupCommitter[int, str] = GroupCommitter(
        write, max_batch=4, max_wait=0.001, on_failure=lambda exc: "failed"
    )
    assert commit.timeout is None
    assert await asyncio.gather(*(commit.submit(n) for n in range(6))) == [
        f"ok{n}" for n in range(6)
    ]
