"""Stats on every backend: hand-computed figures, and the SQL rollup equal to a raw GROUP BY.

The fixture set is small enough to count by hand (the expected figures below are written
out, not computed); the random set checks, after concurrent saves, edits, racing
supersedes and retractions, that the hourly rollup kept in step by the writes holds
exactly what a rebuild from the rows gives, and that rollup-based stats equal the raw
``GROUP BY`` and the Python reference for many windows.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.core.records import FeedbackItem
from feedback_asgi.core.result import Ok
from feedback_asgi.storage.memory import MemoryFeedbackStore
from feedback_asgi.storage.sql import migrations
from feedback_asgi.storage.sql.rollup import backfill
from feedback_asgi.storage.sql.schema import ai_feedback, ai_feedback_hourly, item_to_row
from feedback_asgi.storage.sql.stats import run_stats, split_window
from feedback_asgi.storage.sql.store import SqlFeedbackStore
from feedback_asgi.storage.stats import GroupStats, StatsQuery, stats_from_items
from tests import services

BASE = datetime(2026, 1, 10, tzinfo=UTC)


def at(hours: float) -> datetime:
    return BASE + timedelta(hours=hours)


def item(kind: str, value: Any, hours: float, **context: str) -> FeedbackItem:
    return FeedbackItem(kind, value, context=context, created_at=at(hours))


def fixture_items() -> tuple[list[FeedbackItem], list[FeedbackItem]]:
    """(first saves, later edits/retractions) of the hand-counted set."""
    edited = item("rating", 5, 8.75, model="b", user_id="u5", session_id="s5")
    retracted = item("thumbs", 1, 2.0, model="a", user_id="u9", session_id="s9")
    first = [
        item("rating", 4, 1.17, model="a", intent="faq", user_id="u1", session_id="s1"),
        item("rating", 1, 2.5, model="a", intent="faq", user_id="u2", session_id="s1"),
        item("thumbs", 1, 3.08, model="a", intent="code", user_id="u1", session_id="s2"),
        item("thumbs", -1, 3.83, model="b", intent="code", user_id="u3", session_id="s3"),
        item("thumbs", 1, 5.0, model="b", user_id="u3", session_id="s3"),
        item("text", "too long", 6.33, model="b", user_id="u4"),
        item("preference", {"chosen": 1}, 7.0, session_id="s7"),
        edited,
        retracted,
        item("rating", 1, -1.0, model="a", user_id="u1"),  # before the window
        item("rating", 2, 9.5, model="a", user_id="u1"),  # at the window's end: excluded
    ]
    later = [
        FeedbackItem("rating", 3, context=dict(edited.context), created_at=at(9.25),
                     supersedes=edited.id),
        FeedbackItem("thumbs", None, context=dict(retracted.context), created_at=at(10),
                     supersedes=retracted.id, tombstone=True),
    ]
    return first, later


def figures(group: GroupStats) -> dict[str, Any]:
    return {"key": group.key, **group.to_dict()}


async def save_fixture(store: Any) -> None:
    first, later = fixture_items()
    assert (await store.save_many(first)).is_ok()
    for edit in later:
        assert await store.save(edit) == Ok(edit.id)


@contextlib.asynccontextmanager
async def database(backend: str, tmp_path: Any) -> AsyncIterator[str]:
    """A private database of ``backend``, dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'stats.db'}"
        return
    create, drop = (
        (services.create_postgres_database, services.drop_postgres_database)
        if backend == "postgres"
        else (services.create_mysql_database, services.drop_mysql_database)
    )
    name, url = await create()
    try:
        yield url
    finally:
        await drop(name)


@pytest.fixture(params=["memory", "sqlite", "postgres", "mariadb"])
async def store(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield MemoryFeedbackStore()
        return
    async with database(request.param, tmp_path) as url:
        sql = SqlFeedbackStore(url)
        yield sql
        await sql.close()


WINDOW = StatsQuery(at(1), at(9.5))


async def test_hand_computed_figures_by_model(store: Any) -> None:
    await save_fixture(store)
    groups = await store.stats(StatsQuery(at(1), at(9.5), by="model", unique=True))
    assert [figures(g) for g in groups] == [
        {"key": "a", "total_count": 3, "count_by_type": {"rating": 2, "thumbs": 1},
         "rating_count": 2, "average_rating": 2.5, "thumbs_up": 1, "thumbs_down": 0,
         "thumbs_up_rate": 1.0, "unique_users": 2, "unique_sessions": 2},
        {"key": "b", "total_count": 4, "count_by_type": {"rating": 1, "text": 1, "thumbs": 2},
         "rating_count": 1, "average_rating": 3.0, "thumbs_up": 1, "thumbs_down": 1,
         "thumbs_up_rate": 0.5, "unique_users": 3, "unique_sessions": 2},
        {"key": None, "total_count": 1, "count_by_type": {"preference": 1},
         "rating_count": 0, "average_rating": None, "thumbs_up": 0, "thumbs_down": 0,
         "thumbs_up_rate": None, "unique_users": 0, "unique_sessions": 1},
    ]


async def test_hand_computed_totals_filters_and_edges(store: Any) -> None:
    await save_fixture(store)
    (total,) = await store.stats(WINDOW)
    assert figures(total) == {
        "key": None, "total_count": 8,
        "count_by_type": {"preference": 1, "rating": 3, "text": 1, "thumbs": 3},
        "rating_count": 3, "average_rating": 8 / 3, "thumbs_up": 2, "thumbs_down": 1,
        "thumbs_up_rate": 2 / 3,
    }
    # a start inside an hour (1:30) drops the 1:10 rating; the 9:15 edit falls after 9:00
    (inner,) = await store.stats(StatsQuery(at(1.5), at(9)))
    assert (inner.total_count, inner.rating_count, inner.rating_sum) == (6, 1, 1.0)
    (faq,) = await store.stats(StatsQuery(at(1), at(9.5), filters={"intent": "faq"}))
    assert (faq.total_count, faq.average_rating) == (2, 2.5)
    by_intent = await store.stats(StatsQuery(at(1), at(9.5), by="intent",
                                             filters={"model": "a"}))
    assert [(g.key, g.total_count) for g in by_intent] == [("code", 1), ("faq", 2)]
    (empty,) = await store.stats(StatsQuery(at(100), at(200)))
    assert (empty.total_count, empty.average_rating, empty.thumbs_up_rate) == (0, None, None)
    summary = await store.aggregate(since=at(1), until=at(9.5), model="b")
    assert (summary.total_count, summary.thumbs_up, summary.thumbs_down) == (4, 1, 1)
    assert summary.count_by_type == {"rating": 1, "text": 1, "thumbs": 2}


async def test_filters_on_the_clients_and_the_tracing_systems_ids(store: Any) -> None:
    trace = "0af7651916cd43dd8448eb211c80319c"
    items = [
        item("rating", 4, 1.5, model="a", otel_trace_id=trace, request_id="r1"),
        item("rating", 2, 3.5, model="a", otel_trace_id=trace, request_id="r2"),
        item("thumbs", 1, 4.5, model="b", otel_trace_id=trace),  # whole hours: no rollup
        item("rating", 5, 5.5, model="a", request_id="r1"),
        item("rating", 1, 6.5, model="b"),
    ]
    assert (await store.save_many(items)).is_ok()
    by_model = await store.stats(StatsQuery(at(1), at(9.5), by="model",
                                            filters={"otel_trace_id": trace}))
    assert [(g.key, g.total_count, g.rating_sum) for g in by_model] == [
        ("a", 2, 6.0), ("b", 1, 0.0)]
    (request,) = await store.stats(StatsQuery(at(1), at(9.5), filters={"request_id": "r1"}))
    assert (request.total_count, request.rating_sum) == (2, 9.0)
    with pytest.raises(ValueError, match="cannot group by"):
        StatsQuery(at(1), at(9.5), by="request_id")


async def test_hand_computed_time_series(store: Any) -> None:
    await save_fixture(store)
    hourly = await store.stats(StatsQuery(at(1), at(9.5), interval="hour", unique=True))
    assert [(g.bucket, g.total_count, g.unique_users) for g in hourly] == [
        (at(1), 1, 1), (at(2), 1, 1), (at(3), 2, 2), (at(5), 1, 1), (at(6), 1, 1),
        (at(7), 1, 0), (at(9), 1, 1),
    ]
    daily = await store.stats(StatsQuery(at(-2), at(30), by="model", interval="day"))
    assert [(g.bucket, g.key, g.total_count) for g in daily] == [
        (BASE - timedelta(days=1), "a", 1), (BASE, "a", 4), (BASE, "b", 4), (BASE, None, 1),
    ]


def test_split_window() -> None:
    assert split_window(at(1.5), at(5.25)) == ([(at(1.5), at(2)), (at(5), at(5.25))], (at(2), at(5)))
    assert split_window(at(1), at(5)) == ([], (at(1), at(5)))
    assert split_window(at(1.5), at(1.75)) == ([(at(1.5), at(1.75))], None)
    assert split_window(at(1.5), at(2.5)) == ([(at(1.5), at(2.5))], None)
    assert split_window(at(1.5), None) == ([(at(1.5), at(2))], (at(2), None))


# the rollup against the rows


KINDS = ["rating", "thumbs", "text", "preference"]


def random_item(rng: random.Random, hours: float) -> FeedbackItem:
    kind = rng.choice(KINDS)
    value: Any = {"rating": rng.choice([1, 2, 3, 4, 5, 4.5]), "thumbs": rng.choice([1, -1]),
                  "text": "meh", "preference": {"x": 1}}[kind]
    context = {key: rng.choice(values) for key, values in (
        ("model", ["m1", "m2", "m3", None]), ("provider", ["p1", "p2"]),
        ("intent", ["i1", "i2", None]), ("project", ["prj"]), ("endpoint", ["/chat", None]),
        ("user_id", ["u1", "u2", "u3", "u4"]), ("session_id", ["s1", "s2", "s3"]))}
    context = {k: v for k, v in context.items() if v is not None}
    return FeedbackItem(kind, value, context=context, created_at=at(hours))


async def random_history(store: SqlFeedbackStore, seed: int) -> None:
    """Concurrent saves (group commit), batches, edits, racing supersedes and retractions."""
    rng = random.Random(seed)
    items = [random_item(rng, rng.uniform(-30, 80)) for _ in range(300)]
    results = await asyncio.gather(*(store.save(one) for one in items[:200]))
    assert all(result.is_ok() for result in results)
    assert (await store.save_many(items[200:])).is_ok()
    live = {one.id: one for one in items}
    for round_ in range(4):
        targets = rng.sample(sorted(live), 40)
        attempts = []
        for target in targets:
            old = live[target]
            for _ in range(rng.choice([1, 1, 2])):  # some targets get two racing successors
                edit = random_item(rng, rng.uniform(-30, 80))
                tombstone = rng.random() < 0.25
                attempts.append(FeedbackItem(
                    edit.feedback_type if not tombstone else old.feedback_type,
                    edit.value, context=edit.context if rng.random() < 0.5 else old.context,
                    created_at=edit.created_at, supersedes=target, tombstone=tombstone))
        outcomes = await asyncio.gather(*(store.save(one) for one in attempts))
        winners = [one for one, outcome in zip(attempts, outcomes, strict=True) if outcome.is_ok()]
        assert len(winners) == len(targets)  # exactly one successor per target
        for one in winners:
            live.pop(one.supersedes or "", None)
            if not one.tombstone:
                live[one.id] = one
        # an edit chain inside one batch as well
        chain_start = random_item(rng, rng.uniform(0, 48))
        chain_next = FeedbackItem("rating", 2, context=chain_start.context,
                                  created_at=at(round_), supersedes=chain_start.id)
        assert (await store.save_many([chain_start, chain_next])).is_ok()
        live[chain_next.id] = chain_next


async def rollup_rows(engine: AsyncEngine) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(ai_feedback_hourly))
        return {(r.bucket, r.dims): (r.n, r.rated, r.rating_sum, r.up, r.down)
                for r in rows if r.n}


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_rollup_equals_raw_group_by_after_concurrent_edits(backend: str, tmp_path: Any) -> None:
    async with database(backend, tmp_path) as url:
        await check_rollup_against_rows(url)


async def check_rollup_against_rows(url: str) -> None:
    store = SqlFeedbackStore(url, config=FeedbackConfig(group_commit_max_wait_ms=5))
    try:
        await random_history(store, seed=7)
        engine = create_async_engine(url)
        kept = await rollup_rows(engine)
        # a rebuild from the rows gives exactly what the writes kept in step
        async with engine.connect() as conn:
            transaction = await conn.begin()
            await backfill(conn)
            rows = await conn.execute(select(ai_feedback_hourly))
            rebuilt = {(r.bucket, r.dims): (r.n, r.rated, r.rating_sum, r.up, r.down)
                       for r in rows if r.n}
            await transaction.rollback()
        assert kept == rebuilt
        assert len(kept) > 50
        live = [one async for one in store.iter_items()]
        rng = random.Random(3)
        queries = [StatsQuery(at(-40), at(90), by="model", unique=True),
                   StatsQuery(at(0), None, by="intent"),
                   StatsQuery(at(2.5), at(30.75), interval="hour", by="provider"),
                   StatsQuery(at(-10.2), at(70.1), interval="day", by="endpoint")]
        for _ in range(12):
            start = rng.uniform(-35, 75)
            queries.append(StatsQuery(at(start), at(start + rng.uniform(0.1, 50)),
                                      by=rng.choice([None, "model", "project", "intent"]),
                                      filters=rng.choice([{}, {"model": "m2"}, {"provider": "p1"}])))
        async with engine.connect() as conn:
            for query in queries:
                fast = await store.stats(query)
                raw = await run_stats(conn, query, use_rollup=False)
                assert [figures(g) | {"b": g.bucket} for g in fast] == \
                    [figures(g) | {"b": g.bucket} for g in raw], query
                reference = stats_from_items(query, live)
                assert [figures(g) | {"b": g.bucket} for g in fast] == \
                    [figures(g) | {"b": g.bucket} for g in reference], query
        await engine.dispose()
    finally:
        await store.close()


async def test_migration_and_lazy_creation_backfill_existing_rows(tmp_path: Any) -> None:
    """Rows written before the rollup existed are counted once it is made."""
    first, _ = fixture_items()
    for how in ("migration", "lazy"):
        url = f"sqlite+aiosqlite:///{tmp_path / (how + '.db')}"
        await migrations.upgrade_async(url, "0001")  # the schema before the rollup
        raw = SqlFeedbackStore(url, config=FeedbackConfig(create_tables=False))
        engine = await raw.read_engine()
        async with engine.begin() as conn:
            # rows as that version wrote them: without the columns of later migrations
            await conn.execute(ai_feedback.insert(), [
                {key: value for key, value in item_to_row(one, root_id=one.id,
                                                          is_live=True).items()
                 if key not in ("request_id", "otel_trace_id")}
                for one in first
            ])
        await raw.close()
        if how == "migration":
            await migrations.upgrade_async(url)
            store = SqlFeedbackStore(url, config=FeedbackConfig(create_tables=False))
        else:
            store = SqlFeedbackStore(url)  # creates the missing rollup and fills it
        groups = await store.stats(StatsQuery(at(1), at(9.5), by="model"))
        assert [(g.key, g.total_count) for g in groups] == [("a", 4), ("b", 4), (None, 1)], how
        await store.close()
