"""Several stores on one SQLite file, as several worker processes would be.

Writes take the write lock at ``BEGIN`` (``BEGIN IMMEDIATE``) and wait for it up to the
busy timeout; reads take no lock. Before that, two workers starting on a new file both
found the tables missing and one failed with "table ... already exists" (a 503 to the
user), and a transaction that read before writing could fail its lock upgrade at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

from feedback_asgi.core.records import FeedbackItem
from feedback_asgi.core.result import Ok
from feedback_asgi.storage.sql.store import SqlFeedbackStore

WORKERS = 4
ROUNDS = 12
VOTES = 4


async def _vote_chain(store: SqlFeedbackStore, trace: str) -> list[object]:
    """One person's votes on one trace: each new vote supersedes the live one."""
    outcomes: list[object] = []
    for n in range(VOTES):
        live = await store.find_by_trace(trace)
        item = FeedbackItem(
            "thumbs", n % 2, context={"trace_id": trace},
            supersedes=live[0].id if live else None,
        )
        outcome = await store.save(item)
        outcomes.append(outcome if outcome != Ok(item.id) else "ok")
    return outcomes


async def test_workers_starting_together_on_a_new_file_store_every_vote(tmp_path: Path) -> None:
    for round_ in range(ROUNDS):
        url = f"sqlite+aiosqlite:///{tmp_path / f'round{round_}.db'}"
        stores = [SqlFeedbackStore(url) for _ in range(WORKERS)]
        try:
            async with asyncio.timeout(30):
                # Every store's first use is concurrent: each creates the tables if missing.
                chains = await asyncio.gather(
                    *(_vote_chain(store, f"t{i % 2}-{i}") for i, store in enumerate(stores)),
                    *(_vote_chain(store, f"u{i}") for i, store in enumerate(stores)),
                )
            assert chains == [["ok"] * VOTES] * (2 * WORKERS), f"round {round_}"
            rows = [item async for item in stores[0].iter_items(include_history=True)]
            assert len(rows) == 2 * WORKERS * VOTES
            live = [item async for item in stores[0].iter_items()]
            assert len(live) == 2 * WORKERS
        finally:
            for store in stores:
                await store.close()


@contextlib.asynccontextmanager
async def _one_vote_and_a_rival(
    path: Path,
) -> AsyncIterator[tuple[SqlFeedbackStore, FeedbackItem, sqlite3.Connection]]:
    """A store on ``path`` holding one vote on trace ``t``, and another worker's connection
    holding the write lock (``BEGIN IMMEDIATE``) until the block ends or it commits."""
    store = SqlFeedbackStore(f"sqlite+aiosqlite:///{path}")
    item = FeedbackItem("thumbs", 1, context={"trace_id": "t"})
    assert await store.save(item) == Ok(item.id)
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield store, item, other
        if other.in_transaction:
            other.execute("ROLLBACK")
    finally:
        other.close()
        await store.close()


async def test_reads_do_not_wait_for_a_held_write_lock(tmp_path: Path) -> None:
    async with _one_vote_and_a_rival(tmp_path / "locked.db") as (store, item, _other):
        started = time.perf_counter()
        async with asyncio.timeout(4):
            assert [i.id for i in await store.find_by_trace("t")] == [item.id]
            assert await store.get(item.id) == item
            assert (await store.aggregate()).total_count == 1
            await store.ping()
        assert time.perf_counter() - started < 2.0  # the busy timeout is 5 s


async def test_a_write_waits_for_the_write_lock_instead_of_failing(tmp_path: Path) -> None:
    async with _one_vote_and_a_rival(tmp_path / "busy.db") as (store, first, other):
        successor = FeedbackItem("thumbs", 0, context={"trace_id": "t"}, supersedes=first.id)
        pending = asyncio.ensure_future(store.save(successor))
        await asyncio.sleep(0.3)
        assert not pending.done()  # waiting for the lock, not failed
        other.execute("COMMIT")
        async with asyncio.timeout(4):
            assert await pending == Ok(successor.id)
        assert [i.id for i in await store.find_by_trace("t")] == [successor.id]
