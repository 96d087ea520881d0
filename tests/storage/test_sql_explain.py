"""On a large PostgreSQL table, none of the store's queries is a sequential scan.

The planner only prefers indexes once the table is big, so this loads 50,000 rows with
``generate_series``, runs ANALYZE, records every statement the store sends while it
answers each kind of read (and a successor's save), and EXPLAINs each one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from feedback_asgi.core.records import FeedbackItem, utc_now
from feedback_asgi.core.result import Ok
from feedback_asgi.storage.sql.rollup import backfill
from feedback_asgi.storage.sql.store import SqlFeedbackStore
from feedback_asgi.storage.stats import StatsQuery

pytestmark = pytest.mark.postgres

ROWS = 50_000

FILL = """
INSERT INTO ai_feedback (id, kind, created_at, trace_id, session_id, user_id, model, provider,
                         rating, thumbs, tombstone, is_live, root_id, value, context, metadata)
SELECT 'gen-' || i, k, now() - (i * interval '30 days' / $1), 'trace-' || i,
       'sess-' || (i % 5000), 'user-' || (i % 1000), 'model-' || (i % 20), 'prov-' || (i % 3),
       CASE WHEN k = 'rating' THEN 1 + i % 5 END, CASE WHEN k = 'thumbs' THEN 1 - 2 * (i % 2) END,
       false, true, 'gen-' || i,
       CASE WHEN k = 'rating' THEN to_jsonb(1 + i % 5) ELSE to_jsonb(1 - 2 * (i % 2)) END,
       jsonb_build_object('session_id', 'sess-' || (i % 5000), 'model', 'model-' || (i % 20)),
       '{}'::jsonb
FROM (SELECT i, CASE WHEN i % 3 = 0 THEN 'rating' WHEN i % 3 = 1 THEN 'thumbs' ELSE 'text' END AS k
      FROM generate_series(1, $1::int) AS i) AS g
"""


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(postgres_url)
    yield engine
    await engine.dispose()


async def test_no_query_is_a_sequential_scan(postgres_url: str, engine: AsyncEngine) -> None:
    store = SqlFeedbackStore(engine)
    target = FeedbackItem("rating", 3, context={"session_id": "sess-1", "model": "model-1"})
    assert await store.save(target) == Ok(target.id)  # creates the schema
    dsn = postgres_url.replace("postgresql+asyncpg://", "postgresql://")
    raw = await asyncpg.connect(dsn)
    try:
        await raw.execute(FILL, ROWS)
        async with engine.begin() as conn:
            assert await backfill(conn) > 10_000  # the hourly rollup of those rows
        await raw.execute("VACUUM ANALYZE ai_feedback")
        await raw.execute("VACUUM ANALYZE ai_feedback_hourly")
        statements: list[tuple[str, tuple[Any, ...]]] = []

        def record(
            _c: Any, _cur: Any, statement: str, parameters: Any, _x: Any, many: bool
        ) -> None:
            if not many and statement.lstrip().upper().startswith(("SELECT", "UPDATE")):
                statements.append((statement, tuple(parameters or ())))

        event.listen(engine.sync_engine, "before_cursor_execute", record)
        now = utc_now()
        await store.get("gen-77")
        await store.history("gen-77")
        await store.find_by_session("sess-42")
        await store.find_by_session("sess-42", include_history=True)
        await store.find_by_trace("trace-4242")
        await store.find_by_type("rating", limit=100)
        await store.find_by_type("text", limit=10, include_history=True)
        first = await store.query(limit=50)
        await store.query(limit=50, cursor=first.next_cursor)
        await store.query(model="model-3", limit=20)
        await store.query(user_id="user-7", limit=20)
        await store.query(type="thumbs", since=now - timedelta(days=2), until=now, limit=20)
        await store.query(session_id="sess-9", include_history=True)
        await store.aggregate(window_hours=24)
        await store.aggregate(window_hours=24, model="model-5")
        await store.aggregate(window_hours=24, provider="prov-1")
        await store.aggregate(window_hours=24, model="model-5", provider="prov-1")
        await store.stats(StatsQuery(now - timedelta(days=1), now, by="model"))
        await store.stats(StatsQuery(now - timedelta(days=2), now, by="model", interval="hour"))
        count = 0
        async for _ in store.iter_items(batch_size=500):
            count += 1
            if count == 1_200:
                break
        successor = FeedbackItem("rating", 4, supersedes=target.id)
        assert await store.save(successor) == Ok(successor.id)
        event.remove(engine.sync_engine, "before_cursor_execute", record)

        assert len(statements) >= 20
        for statement, parameters in statements:
            plan = "\n".join(row[0] for row in await raw.fetch("EXPLAIN " + statement, *parameters))
            assert "Seq Scan" not in plan, f"{statement}\n{parameters}\n{plan}"
    finally:
        await raw.close()
        await store.close()
