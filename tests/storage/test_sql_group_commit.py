"""Group commit: concurrent saves share INSERTs and COMMITs; results come after the commit."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.core.records import FeedbackItem
from feedback_asgi.core.result import Ok
from feedback_asgi.storage.group_commit import GroupCommitter
from feedback_asgi.storage.sql.store import SqlFeedbackStore
from tests import services


class _Statements:
    """Counts INSERT executions (and their rows) and COMMITs on an engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.insert_rows: list[int] = []
        self.commits = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._execute)
        event.listen(engine.sync_engine, "commit", self._commit)

    def _execute(
        self,
        _conn: Any,
        _cursor: Any,
        statement: str,
        parameters: Any,
        _context: Any,
        executemany: bool,
    ) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO AI_FEEDBACK ("):  # not the rollup
            self.insert_rows.append(len(parameters) if executemany else 1)

    def _commit(self, _conn: Any) -> None:
        self.commits += 1


@pytest.fixture
async def pg_engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(postgres_url, pool_size=10)
    yield engine
    await engine.dispose()


async def test_concurrent_saves_share_inserts_and_commits(pg_engine: AsyncEngine) -> None:
    store = SqlFeedbackStore(pg_engine, config=FeedbackConfig(group_commit_max_wait_ms=5))
    warm = FeedbackItem("thumbs", 1)
    assert await store.save(warm) == Ok(warm.id)
    seen = _Statements(pg_engine)
    items = [FeedbackItem("thumbs", 1, context={"session_id": f"s{i}"}) for i in range(200)]
    results = await asyncio.gather(*(store.save(item) for item in items))
    assert results == [Ok(item.id) for item in items]
    assert sum(seen.insert_rows) == 200
    assert len(seen.insert_rows) <= 10  # 200 saves, a handful of multi-row INSERTs
    assert max(seen.insert_rows) > 1
    assert seen.commits == len(seen.insert_rows)
    await store.close()


async def test_batches_respect_max_batch(pg_engine: AsyncEngine) -> None:
    config = FeedbackConfig(group_commit_max_batch=8, group_commit_max_wait_ms=50)
    store = SqlFeedbackStore(pg_engine, config=config)
    assert (await store.save(FeedbackItem("text", "warm"))).is_ok()
    seen = _Statements(pg_engine)
    items = [FeedbackItem("text", str(i)) for i in range(50)]
    results = await asyncio.gather(*(store.save(item) for item in items))
    assert results == [Ok(item.id) for item in items]
    assert max(seen.insert_rows) <= 8
    assert len(seen.insert_rows) >= 7
    await store.close()


async def test_ok_means_committed_and_visible_elsewhere(postgres_url: str) -> None:
    store = SqlFeedbackStore(postgres_url)
    assert (await store.save(FeedbackItem("text", "warm"))).is_ok()
    dsn = postgres_url.replace("postgresql+asyncpg://", "postgresql://")
    pool = await asyncpg.create_pool(dsn, min_size=4, max_size=8)

    async def save_then_look(item: FeedbackItem) -> int:
        assert await store.save(item) == Ok(item.id)
        found: int = await pool.fetchval("SELECT count(*) FROM ai_feedback WHERE id = $1", item.id)
        return found

    try:
        counts = await asyncio.gather(
            *(save_then_look(FeedbackItem("text", str(i))) for i in range(60))
        )
    finally:
        await pool.close()
    assert counts == [1] * 60
    await store.close()


async def test_cancelled_caller_does_not_disturb_its_batch(tmp_path: Path) -> None:
    config = FeedbackConfig(group_commit_max_wait_ms=20)
    store = SqlFeedbackStore(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}", config=config)
    assert (await store.save(FeedbackItem("text", "warm"))).is_ok()
    items = [FeedbackItem("text", str(i)) for i in range(10)]
    tasks = [asyncio.create_task(store.save(item)) for item in items]
    await asyncio.sleep(0)
    tasks[3].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[3], asyncio.CancelledError)
    assert [r for i, r in enumerate(results) if i != 3] == [
        Ok(item.id) for i, item in enumerate(items) if i != 3
    ]
    assert await store.get(items[3].id) is None  # left out of its batch: nobody was told Ok
    await store.close()


async def test_committer_resolves_every_caller_when_the_writer_raises() -> None:
    calls: list[list[int]] = []

    async def write(entries: list[int]) -> list[str]:
        calls.append(entries)
        if 3 in entries:
            raise RuntimeError("boom")
        return [f"ok{e}" for e in entries]

    committer: GroupCommitter[int, str] = GroupCommitter(
        write, max_batch=4, max_wait=0.01, on_failure=lambda exc: f"failed:{type(exc).__name__}"
    )
    results = await asyncio.gather(*(committer.submit(i) for i in range(8)))
    assert results == ["failed:RuntimeError"] * 4 + ["ok4", "ok5", "ok6", "ok7"]
    assert calls == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert committer.batches == 2
    await committer.wait_idle()


@pytest.fixture
def sync_postgres_url() -> Iterator[str]:
    name, url = asyncio.run(services.create_postgres_database())
    try:
        yield url
    finally:
        asyncio.run(services.drop_postgres_database(name))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_one_store_across_event_loops(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'loops.db'}"
    else:
        url = request.getfixturevalue("sync_postgres_url")
    store = SqlFeedbackStore(url)

    async def save_some(tag: str) -> list[str]:
        items = [FeedbackItem("text", tag, context={"session_id": tag}) for _ in range(20)]
        results = await asyncio.gather(*(store.save(item) for item in items))
        assert results == [Ok(item.id) for item in items]
        return [item.id for item in items]

    first = asyncio.run(save_some("one"))
    second = asyncio.run(save_some("two"))  # a new loop: no task or connection of the old one

    async def read_back() -> tuple[list[str], list[str]]:
        one = [item.id for item in await store.find_by_session("one")]
        two = [item.id for item in await store.find_by_session("two")]
        await store.close()
        return one, two

    one, two = asyncio.run(read_back())
    gc.collect()  # any connection left to a dead loop would warn (an error here) now
    assert sorted(one) == sorted(first)
    assert sorted(two) == sorted(second)
