"""Stats benchmark on PostgreSQL: ``python -m bench stats``.

In a database of its own (created, then dropped):

1. writes with the hourly rollup kept in step vs. the same store with the rollup upsert
   switched off (the write path before the rollup): concurrency 64, group commit,
   3 alternating rounds of 10,000 items each, table truncated before each round;
2. 1,000,000 rows over 30 days and 20 models, loaded with ``INSERT ... SELECT
   generate_series`` (the storage benchmark's fill), indexes built afterwards, then the
   rollup rebuilt by :func:`feedback_asgi.storage.sql.rollup.backfill` (what migration
   0002 and a lazily created rollup run), VACUUM ANALYZE;
3. p50/p95 (30 runs after 3 warm-ups, cases alternating) of ``feedback_stats(by="model")``
   for 24 h and 30 days, ``aggregate(window_hours=24)``, and, for reference, the same
   stats as one raw ``GROUP BY`` over the rows (fewer runs).

Figures move from run to run on this shared 2-core machine; the load average is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import create_async_engine

from bench.bench_storage import FILL, MODELS, _dsn, _p, _url, _write_round
from feedback_asgi.analytics import feedback_stats
from feedback_asgi.core.records import utc_now
from feedback_asgi.storage.sql import store as sql_module
from feedback_asgi.storage.sql.rollup import backfill
from feedback_asgi.storage.sql.schema import ai_feedback
from feedback_asgi.storage.sql.stats import run_stats
from feedback_asgi.storage.sql.store import SqlFeedbackStore
from feedback_asgi.storage.stats import StatsQuery

ROWS = 1_000_000
WRITE_ROUND_ITEMS = 10_000
WRITE_ROUNDS = 3
RUNS = 30
RAW_RUNS = 5
TIME_LIMIT_S = 900


@contextlib.contextmanager
def _rollup_off() -> Iterator[None]:
    """The write path without the rollup upsert (what it was before the rollup)."""
    original = sql_module.upsert_statements
    sql_module.upsert_statements = lambda _dialect, _rows: []
    try:
        yield
    finally:
        sql_module.upsert_statements = original


async def bench_writes(database: str) -> dict[str, Any]:
    store = SqlFeedbackStore(_url(database), engine_options={"pool_size": 20, "max_overflow": 0})
    raw = await asyncpg.connect(_dsn(database))
    rates: dict[str, list[float]] = {"rollup": [], "no_rollup": []}
    try:
        await _write_round(store, 200, True)  # creates the schema, warms the pool
        for round_no in range(WRITE_ROUNDS):
            order = ["rollup", "no_rollup"] if round_no % 2 == 0 else ["no_rollup", "rollup"]
            for variant in order:
                await raw.execute("TRUNCATE ai_feedback, ai_feedback_hourly")
                await raw.execute("CHECKPOINT")
                if variant == "rollup":
                    elapsed = await _write_round(store, WRITE_ROUND_ITEMS, True)
                else:
                    with _rollup_off():
                        elapsed = await _write_round(store, WRITE_ROUND_ITEMS, True)
                rates[variant].append(WRITE_ROUND_ITEMS / elapsed)
        rollup_rows = await raw.fetchval("SELECT count(*) FROM ai_feedback_hourly")
    finally:
        await raw.close()
        await store.close()
    on, off = statistics.median(rates["rollup"]), statistics.median(rates["no_rollup"])
    return {
        "concurrency": 64,
        "items_per_round": WRITE_ROUND_ITEMS,
        "rounds": WRITE_ROUNDS,
        "rollup_rows_per_s": round(on),
        "no_rollup_rows_per_s": round(off),
        "ratio": round(on / off, 2),
        "rollup_round_rates": [round(r) for r in rates["rollup"]],
        "no_rollup_round_rates": [round(r) for r in rates["no_rollup"]],
        "rollup_rows_after_last_round": rollup_rows,
    }


async def load_rows(database: str) -> dict[str, Any]:
    raw = await asyncpg.connect(_dsn(database))
    engine = create_async_engine(_url(database))
    try:
        started = time.perf_counter()
        await raw.execute("TRUNCATE ai_feedback, ai_feedback_hourly")
        for index in ai_feedback.indexes:
            await raw.execute(f"DROP INDEX IF EXISTS {index.name}")
        await raw.execute(FILL, ROWS, MODELS)
        fill_s = time.perf_counter() - started
        started = time.perf_counter()
        async with engine.begin() as conn:
            for index in sorted(ai_feedback.indexes, key=lambda ix: str(ix.name)):
                await conn.run_sync(index.create)
        index_s = time.perf_counter() - started
        started = time.perf_counter()
        async with engine.begin() as conn:
            rollup_rows = await backfill(conn)
        backfill_s = time.perf_counter() - started
        await raw.execute("VACUUM (ANALYZE) ai_feedback")
        await raw.execute("VACUUM (ANALYZE) ai_feedback_hourly")
        in_window = await raw.fetchval(
            "SELECT count(*) FROM ai_feedback WHERE created_at >= now() - interval '24 hours'")
    finally:
        await raw.close()
        await engine.dispose()
    return {"rows": ROWS, "fill_s": round(fill_s, 1), "index_s": round(index_s, 1),
            "backfill_s": round(backfill_s, 1), "rollup_rows": rollup_rows,
            "rows_in_24h": in_window}


async def _time(cases: dict[str, Callable[[], Awaitable[Any]]], runs: int) -> dict[str, Any]:
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(3):
        for call in cases.values():
            await call()
    for _ in range(runs):
        for name, call in cases.items():
            started = time.perf_counter()
            await call()
            samples[name].append((time.perf_counter() - started) * 1000)
    return {name: {"p50_ms": round(statistics.median(values), 2),
                   "p95_ms": round(_p(values, 0.95), 2), "runs": len(values)}
            for name, values in samples.items()}


async def bench_reads(database: str) -> dict[str, Any]:
    store = SqlFeedbackStore(_url(database))
    raw_engine = create_async_engine(_url(database), isolation_level="AUTOCOMMIT")
    try:
        fixed_now = utc_now()
        check = await feedback_stats(store, window="30d", until=fixed_now, by="model")
        fast = await _time({
            "stats_by_model_24h": lambda: feedback_stats(store, window="24h", by="model"),
            "stats_by_model_30d": lambda: feedback_stats(store, window="30d", by="model"),
            "aggregate_24h": lambda: store.aggregate(window_hours=24),
        }, RUNS)

        async def raw_group_by(span: timedelta, now: datetime | None = None) -> Any:
            now = now or utc_now()
            async with raw_engine.connect() as conn:
                return await run_stats(conn, StatsQuery(now - span, now, by="model"),
                                       use_rollup=False)

        raw_groups = await raw_group_by(timedelta(days=30), fixed_now)
        same = [g.to_dict() for g in raw_groups] == [g.to_dict() for g in check.groups]
        reference = await _time({
            "raw_group_by_24h": lambda: raw_group_by(timedelta(hours=24)),
            "raw_group_by_30d": lambda: raw_group_by(timedelta(days=30)),
        }, RAW_RUNS)
    finally:
        await store.close()
        await raw_engine.dispose()
    return {**fast, **reference, "groups_30d": len(check.groups),
            "rows_30d": check.totals.total_count if check.totals else None,
            "rollup_counts_equal_raw_30d": same}


async def _run() -> dict[str, Any]:
    database = f"fa_bench_stats_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(_dsn("postgres"))
    await admin.execute(f'CREATE DATABASE "{database}"')
    figures: dict[str, Any] = {"load_average_start": os.getloadavg()}
    try:
        async with asyncio.timeout(TIME_LIMIT_S):
            print("writes (rollup on / off) ...", flush=True)
            figures["writes"] = await bench_writes(database)
            print("loading 1,000,000 rows, rollup backfill ...", flush=True)
            figures["load"] = await load_rows(database)
            print("stats ...", flush=True)
            figures["reads"] = await bench_reads(database)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
    figures["load_average_end"] = os.getloadavg()
    return figures


def _table(figures: dict[str, Any]) -> str:
    w, r, load = figures["writes"], figures["reads"], figures["load"]

    def cell(name: str) -> str:
        return f"p50 **{r[name]['p50_ms']} ms**, p95 {r[name]['p95_ms']} ms ({r[name]['runs']} runs)"

    lines = [
        "| figure | value | goal |",
        "|---|---:|---|",
        f"| stats by model, 24 h ({load['rows_in_24h']:,} rows in window) | "
        f"{cell('stats_by_model_24h')} | p50 <= 10 ms |",
        f"| stats by model, 30 days ({r['rows_30d']:,} rows, {r['groups_30d']} groups) | "
        f"{cell('stats_by_model_30d')} | p50 <= 30 ms |",
        f"| aggregate(window_hours=24) | {cell('aggregate_24h')} | p50 <= 10 ms |",
        f"| reference: raw GROUP BY by model, 24 h | {cell('raw_group_by_24h')} | |",
        f"| reference: raw GROUP BY by model, 30 days | {cell('raw_group_by_30d')} | |",
        f"| group commit c{w['concurrency']}, rollup on | {w['rollup_rows_per_s']:,} rows/s "
        f"(rounds {w['rollup_round_rates']}) | |",
        f"| group commit c{w['concurrency']}, rollup off | {w['no_rollup_rows_per_s']:,} rows/s "
        f"(rounds {w['no_rollup_round_rates']}) | |",
        f"| write rate ratio on/off | **{w['ratio']}x** | close to 1 |",
        f"\nload: fill {load['fill_s']} s, indexes {load['index_s']} s, rollup backfill "
        f"{load['backfill_s']} s ({load['rollup_rows']:,} rollup rows); rollup stats equal the "
        f"raw GROUP BY over 30 days: {r['rollup_counts_equal_raw_30d']}",
        f"load average: start {figures['load_average_start']}, end {figures['load_average_end']}",
    ]
    return "\n".join(lines)


def main() -> dict[str, Any]:
    """Run the stats benchmark once, print the table, return the figures."""
    figures = asyncio.run(_run())
    print(_table(figures), flush=True)
    return figures


if __name__ == "__main__":
    main()
