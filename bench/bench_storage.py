"""Storage benchmarks on PostgreSQL: ``python -m bench storage``.

In a database of its own (created, then dropped):

1. writes, concurrency 64, 20,000 items per variant (2 alternating rounds of 10,000):
   group commit (``store.save``) against one transaction per item
   (``store.save_many([item])``), the same store code and a pool of 20 connections;
2. ``aggregate(window_hours=24)`` over 1,000,000 rows spread over 30 days (loaded with
   ``INSERT ... SELECT generate_series``, indexes built afterwards, then VACUUM ANALYZE):
   p50/p95 of 30 runs after 3 warm-ups, plus the plan of one run;
3. ``iter_items`` over the same 1,000,000 rows, in a fresh process each time: rows/s and
   peak RSS growth over the RSS before iterating.

Figures move from run to run on this shared 2-core machine; read ratios, not absolutes.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.ext.asyncio import create_async_engine

from feedback_asgi.core.records import FeedbackItem
from feedback_asgi.storage.sql.schema import ai_feedback, metadata
from feedback_asgi.storage.sql.store import SqlFeedbackStore

PG = "postgres@127.0.0.1:5432"
CONCURRENCY = 64
WRITE_ITEMS = 20_000
WRITE_ROUNDS = 2
ROWS = 1_000_000
AGG_RUNS = 30
TIME_LIMIT_S = 900

MODELS = [f"model-{i:02d}" for i in range(20)]
FILL = """
INSERT INTO ai_feedback (id, kind, created_at, trace_id, session_id, user_id, model, provider,
                         rating, thumbs, tombstone, is_live, root_id, value, context, metadata)
SELECT id, kind, created_at, trace_id, session_id, user_id, model, provider,
       CASE WHEN kind = 'rating' THEN 1 + floor(r2 * 5) END,
       CASE WHEN kind = 'thumbs' THEN CASE WHEN r2 < 0.72 THEN 1 ELSE -1 END END,
       false, true, id,
       CASE kind WHEN 'rating' THEN to_jsonb(1 + floor(r2 * 5)::int)
                 WHEN 'thumbs' THEN to_jsonb(CASE WHEN r2 < 0.72 THEN 1 ELSE -1 END)
                 ELSE to_jsonb('The answer ' || (ARRAY['missed the date', 'was long',
                               'cited the wrong policy'])[1 + floor(r2 * 3)::int]) END,
       jsonb_build_object('trace_id', trace_id, 'session_id', session_id, 'user_id', user_id,
                          'model', model, 'provider', provider, 'input', 'What is the policy?',
                          'output', 'The policy says ...'),
       jsonb_build_object('source', 'widget')
FROM (SELECT gen_random_uuid()::text AS id,
             CASE WHEN r1 < 0.50 THEN 'thumbs' WHEN r1 < 0.85 THEN 'rating' ELSE 'text' END AS kind,
             now() - interval '30 days' + (i / $1::float8) * interval '30 days' AS created_at,
             md5(i::text) AS trace_id,
             'sess_' || floor(r3 * 200000)::int AS session_id,
             'user_' || floor(r3 * 50000)::int AS user_id,
             ($2::text[])[1 + floor(power(r4, 1.6) * 20)::int] AS model,
             (ARRAY['openai', 'anthropic', 'google'])[1 + floor(r4 * 3)::int] AS provider,
             r2
      FROM (SELECT i, random() r1, random() r2, random() r3, random() r4
            FROM generate_series(1, $1::int) AS i) AS raw) AS gen
"""


def _dsn(database: str) -> str:
    return f"postgresql://{PG}/{database}"


def _url(database: str) -> str:
    return f"postgresql+asyncpg://{PG}/{database}"


def _item(i: int) -> FeedbackItem:
    kind = "thumbs" if i % 2 else "rating"
    return FeedbackItem(
        kind,
        (1 if i % 3 else -1) if kind == "thumbs" else 1 + i % 5,
        context={"trace_id": uuid.uuid4().hex, "session_id": f"sess_{i % 100_000}",
                 "model": MODELS[i % 20], "provider": "openai",
                 "input": "What is the refund policy?", "output": "Refunds within 30 days."},
        metadata={"source": "bench"},
    )


async def _write_round(store: SqlFeedbackStore, n: int, grouped: bool) -> float:
    counter = itertools.count()
    failures = 0

    async def worker() -> None:
        nonlocal failures
        while (i := next(counter)) < n:
            item = _item(i)
            result = await (store.save(item) if grouped else store.save_many([item]))
            failures += result.is_err()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{failures} saves failed")
    return elapsed


async def bench_writes(database: str) -> dict[str, Any]:
    options = {"pool_size": 20, "max_overflow": 0}
    grouped = SqlFeedbackStore(_url(database), engine_options=options)
    per_item = SqlFeedbackStore(_url(database), engine_options=options)
    raw = await asyncpg.connect(_dsn(database))
    per_round = WRITE_ITEMS // WRITE_ROUNDS
    times: dict[str, list[float]] = {"group": [], "per_item": []}
    try:
        await grouped.ping()
        await _write_round(grouped, 100, True)  # creates the schema, warms both pools
        await _write_round(per_item, 100, False)
        for round_no in range(WRITE_ROUNDS):
            order = ["group", "per_item"] if round_no % 2 == 0 else ["per_item", "group"]
            for variant in order:
                await raw.execute("TRUNCATE ai_feedback")
                await raw.execute("CHECKPOINT")
                store = grouped if variant == "group" else per_item
                times[variant].append(await _write_round(store, per_round, variant == "group"))
        batches = grouped.batches_committed
        rows = await raw.fetchval("SELECT count(*) FROM ai_feedback")
    finally:
        await raw.close()
        await grouped.close()
        await per_item.close()
    group_rate = WRITE_ITEMS / sum(times["group"])
    item_rate = WRITE_ITEMS / sum(times["per_item"])
    return {
        "items_per_variant": WRITE_ITEMS,
        "concurrency": CONCURRENCY,
        "group_commit_rows_per_s": round(group_rate),
        "per_item_rows_per_s": round(item_rate),
        "ratio": round(group_rate / item_rate, 2),
        "group_round_rates": [round(per_round / t) for t in times["group"]],
        "per_item_round_rates": [round(per_round / t) for t in times["per_item"]],
        "group_batches": batches,
        "group_mean_batch": round((WRITE_ITEMS + 100) / batches, 1) if batches else None,
        "rows_in_last_round": rows,
    }


async def load_rows(database: str) -> dict[str, Any]:
    raw = await asyncpg.connect(_dsn(database))
    engine = create_async_engine(_url(database))
    try:
        started = time.perf_counter()
        await raw.execute("TRUNCATE ai_feedback")
        for index in ai_feedback.indexes:
            await raw.execute(f"DROP INDEX IF EXISTS {index.name}")
        await raw.execute(FILL, ROWS, MODELS)
        fill_s = time.perf_counter() - started
        started = time.perf_counter()
        async with engine.begin() as conn:
            for index in sorted(ai_feedback.indexes, key=lambda ix: str(ix.name)):
                await conn.run_sync(index.create)
        await raw.execute("VACUUM (ANALYZE) ai_feedback")
        index_s = time.perf_counter() - started
        size = await raw.fetchval("SELECT pg_size_pretty(pg_total_relation_size('ai_feedback'))")
        in_window = await raw.fetchval(
            "SELECT count(*) FROM ai_feedback WHERE created_at >= now() - interval '24 hours'")
    finally:
        await raw.close()
        await engine.dispose()
    assert metadata.tables["ai_feedback"] is ai_feedback
    return {"rows": ROWS, "fill_s": round(fill_s, 1), "index_vacuum_s": round(index_s, 1),
            "table_size": size, "rows_in_24h": in_window}


def _p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, round(q * len(ordered)) - 1)]


async def bench_aggregate(database: str) -> dict[str, Any]:
    engine = create_async_engine(_url(database))
    store = SqlFeedbackStore(engine)
    captured: list[tuple[str, tuple[Any, ...]]] = []

    def capture(_c: Any, _cur: Any, statement: str, params: Any, _x: Any, _many: bool) -> None:
        captured.append((statement, tuple(params or ())))

    out: dict[str, Any] = {}
    raw = await asyncpg.connect(_dsn(database))
    try:
        event.listen(engine.sync_engine, "before_cursor_execute", capture)
        summary = await store.aggregate(window_hours=24)
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
        statement, params = captured[-1]
        plan = [r[0] for r in await raw.fetch("EXPLAIN (ANALYZE, BUFFERS) " + statement, *params)]
        out["plan"] = [line.strip() for line in plan if "Scan" in line or "Execution" in line]
        out["total_count_24h"] = summary.total_count
        cases = {"24h": {"window_hours": 24}, "24h_one_model": {"window_hours": 24, "model": MODELS[3]},
                 "30d": {"window_hours": 24 * 30}}
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(3):
            for kwargs in cases.values():
                await store.aggregate(**kwargs)
        for run in range(AGG_RUNS):
            for name, kwargs in cases.items():
                if name == "30d" and run >= 10:
                    continue
                started = time.perf_counter()
                await store.aggregate(**kwargs)
                samples[name].append((time.perf_counter() - started) * 1000)
        for name, values in samples.items():
            out[name] = {"p50_ms": round(statistics.median(values), 2),
                         "p95_ms": round(_p(values, 0.95), 2), "runs": len(values)}
    finally:
        await raw.close()
        await store.close()
        await engine.dispose()
    return out


def bench_iter(database: str, batch_size: int) -> dict[str, Any]:
    """Run :func:`_iterate` in a fresh process, so its peak RSS is its own."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.bench_storage", "--iterate", database, str(batch_size)],
        capture_output=True, text=True, timeout=600, check=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def _iterate(database: str, batch_size: int) -> dict[str, Any]:
    store = SqlFeedbackStore(_url(database))
    await store.ping()
    before = _rss_mb()
    started = time.perf_counter()
    count = 0
    async for _item in store.iter_items(batch_size=batch_size):
        count += 1
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    await store.close()
    return {"batch_size": batch_size, "rows": count, "seconds": round(elapsed, 1),
            "rows_per_s": round(count / elapsed), "rss_before_mb": round(before, 1),
            "peak_rss_mb": round(peak, 1), "rss_growth_mb": round(peak - before, 1)}


async def _run() -> dict[str, Any]:
    database = f"fa_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(_dsn("postgres"))
    await admin.execute(f'CREATE DATABASE "{database}"')
    figures: dict[str, Any] = {}
    try:
        async with asyncio.timeout(TIME_LIMIT_S):
            print("writes ...", flush=True)
            figures["writes"] = await bench_writes(database)
            print("loading 1,000,000 rows ...", flush=True)
            figures["load"] = await load_rows(database)
            print("aggregate ...", flush=True)
            figures["aggregate"] = await bench_aggregate(database)
            print("iter_items ...", flush=True)
            figures["iter_items"] = [
                await asyncio.to_thread(bench_iter, database, size) for size in (1000, 10_000)
            ]
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
    return figures


def _table(figures: dict[str, Any]) -> str:
    w, a, load = figures["writes"], figures["aggregate"], figures["load"]
    lines = [
        "| figure | value | goal |",
        "|---|---:|---|",
        f"| group commit, c{w['concurrency']}, {w['items_per_variant']:,} items | "
        f"{w['group_commit_rows_per_s']:,} rows/s (mean batch {w['group_mean_batch']}) | |",
        f"| one transaction per item, same store, pool 20 | {w['per_item_rows_per_s']:,} rows/s | |",
        f"| ratio | **{w['ratio']}x** | >= 3x |",
        f"| aggregate(window_hours=24), {load['rows']:,} rows / 30 days "
        f"({load['rows_in_24h']:,} in window) | p50 **{a['24h']['p50_ms']} ms**, "
        f"p95 {a['24h']['p95_ms']} ms | p50 <= 10 ms |",
        f"| aggregate 24 h, one model | p50 {a['24h_one_model']['p50_ms']} ms | |",
        f"| aggregate 30 days (info) | p50 {a['30d']['p50_ms']} ms | |",
    ]
    for it in figures["iter_items"]:
        lines.append(
            f"| iter_items(batch_size={it['batch_size']:,}) over {it['rows']:,} rows | "
            f"**{it['rows_per_s']:,} rows/s**, RSS growth **{it['rss_growth_mb']} MB** "
            f"(before {it['rss_before_mb']} MB) | RSS growth < 100 MB |")
    lines.append(f"\nplan of aggregate 24 h: {' / '.join(a['plan'])}")
    lines.append(f"load: fill {load['fill_s']} s, indexes + VACUUM ANALYZE "
                 f"{load['index_vacuum_s']} s, {load['table_size']}")
    return "\n".join(lines)


def main() -> dict[str, Any]:
    """Run every storage benchmark once, print the table, return the figures."""
    figures = asyncio.run(_run())
    print(_table(figures), flush=True)
    return figures


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--iterate":
        print(json.dumps(asyncio.run(_iterate(sys.argv[2], int(sys.argv[3])))))
    else:
        main()
