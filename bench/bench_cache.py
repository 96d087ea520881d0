"""``find_by_session`` hot reads: through ``CachedFeedbackStore`` (Redis) vs straight from
PostgreSQL (``SqlFeedbackStore``), in one run, rounds alternating, concurrency 64.

``cached`` is the store as shipped (a hit is one Redis round trip that confirms the list
this process decoded earlier is current); ``cached_payload`` turns those decoded copies
off, so every hit fetches and parses the JSON list.

Uses a PostgreSQL database of its own (created, then dropped) and a Redis key prefix of
its own (deleted afterwards). Goal: cached reads >= 5x the reads/s of PostgreSQL.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
REDIS_URL = "redis://127.0.0.1:6379/0"
ITEMS = 20_000
SESSIONS = 2_000  # 10 items per session
HOT_SESSIONS = 200
CONCURRENCY = 64
READS_PER_ROUND = 6_000
ROUNDS = 5  # per variant, alternating
ROUND_TIME_CAP = 30.0  # seconds; a round stops early rather than run longer
POOL = {"pool_size": 32, "max_overflow": 0}


async def _run_round(read: Callable[[str], Awaitable[Any]], hot: list[str]) -> dict[str, float]:
    rng = random.Random(7)
    plan = [rng.choice(hot) for _ in range(READS_PER_ROUND)]
    latencies: list[float] = []
    next_index = 0
    deadline = time.perf_counter() + ROUND_TIME_CAP

    async def worker() -> None:
        nonlocal next_index
        while next_index < len(plan) and time.perf_counter() < deadline:
            session = plan[next_index]
            next_index += 1
            started = time.perf_counter()
            found = await read(session)
            latencies.append(time.perf_counter() - started)
            if len(found) != ITEMS // SESSIONS:
                raise RuntimeError(f"session {session}: {len(found)} items")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "reads": len(latencies),
        "reads_per_s": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
    }


async def _seed(store: Any) -> list[str]:
    from feedback_asgi.core.records import FeedbackItem, FeedbackType, utc_now
    from feedback_asgi.core.result import Ok

    sessions = [f"bench-session-{i}" for i in range(SESSIONS)]
    base = utc_now() - timedelta(days=1)
    items = [
        FeedbackItem(
            FeedbackType.RATING,
            float(1 + i % 5),
            context={
                "session_id": sessions[i % SESSIONS],
                "trace_id": f"trace-{i}",
                "model": "bench-model",
                "input": "question " * 10,
                "output": "answer " * 30,
            },
            metadata={"comment": "fine"},
            created_at=base + timedelta(seconds=i),
        )
        for i in range(ITEMS)
    ]
    for start in range(0, ITEMS, 1_000):
        result = await store.save_many(items[start : start + 1_000])
        if not isinstance(result, Ok):
            raise RuntimeError(f"seeding failed: {result}")
    return sessions


async def _bench() -> dict[str, Any]:
    import asyncpg

    from feedback_asgi.storage.redis import CachedFeedbackStore, make_redis_client
    from feedback_asgi.storage.sql.store import SqlFeedbackStore

    name = f"fa_bench_cache_{uuid.uuid4().hex[:10]}"
    prefix = f"fa_bench_cache_{uuid.uuid4().hex[:10]}:"
    admin = await asyncpg.connect(database="postgres", **PG)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    sql = SqlFeedbackStore(url, engine_options=POOL)
    cached = CachedFeedbackStore(sql, make_redis_client(REDIS_URL), prefix=prefix, ttl=300.0)
    # The same cache without the per-process decoded copies: every hit moves and parses
    # the JSON payload (what a cache without that layer would cost).
    payload_only = CachedFeedbackStore(sql, make_redis_client(REDIS_URL), prefix=prefix, ttl=300.0)
    payload_only.local_entries = 0
    try:
        sessions = await _seed(sql)
        hot = random.Random(1).sample(sessions, HOT_SESSIONS)
        await cached.ping_redis()
        await payload_only.find_by_session(hot[0])  # first contacts bump the epoch
        await cached.find_by_session(hot[0])
        for session in hot:  # warm PostgreSQL's buffers and the Redis entries
            await sql.find_by_session(session)
            await cached.find_by_session(session)
            await payload_only.find_by_session(session)
        variants: dict[str, Callable[[str], Awaitable[Any]]] = {
            "postgresql": sql.find_by_session,
            "cached": cached.find_by_session,
            "cached_payload": payload_only.find_by_session,
        }
        rounds: dict[str, list[dict[str, float]]] = {key: [] for key in variants}
        print(f"{'round':>5} {'variant':<14} {'reads/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
        for number in range(ROUNDS):
            for key, read in variants.items():
                figures = await _run_round(read, hot)
                rounds[key].append(figures)
                print(
                    f"{number:>5} {key:<14} {figures['reads_per_s']:>9.0f} "
                    f"{figures['p50_ms']:>8.2f} {figures['p99_ms']:>8.2f}",
                    flush=True,
                )
        medians = {
            key: {
                field: statistics.median(r[field] for r in runs)
                for field in ("reads_per_s", "p50_ms", "p99_ms")
            }
            for key, runs in rounds.items()
        }
        ratio = medians["cached"]["reads_per_s"] / medians["postgresql"]["reads_per_s"]
        payload_ratio = (
            medians["cached_payload"]["reads_per_s"] / medians["postgresql"]["reads_per_s"]
        )
        print(
            f"median reads/s: postgresql {medians['postgresql']['reads_per_s']:.0f}, "
            f"cached {medians['cached']['reads_per_s']:.0f}; ratio {ratio:.1f}x "
            f"(goal >= 5x: {'met' if ratio >= 5 else 'NOT met'}); "
            f"cached_payload {medians['cached_payload']['reads_per_s']:.0f} "
            f"({payload_ratio:.1f}x); "
            f"cache hits {cached.hits}, misses {cached.misses}, redis errors {cached.redis_errors}"
        )
        return {
            "items": ITEMS,
            "sessions": SESSIONS,
            "items_per_session": ITEMS // SESSIONS,
            "hot_sessions": HOT_SESSIONS,
            "concurrency": CONCURRENCY,
            "reads_per_round": READS_PER_ROUND,
            "rounds_per_variant": ROUNDS,
            "postgres_pool": POOL,
            "median": medians,
            "rounds": rounds,
            "speedup_reads_per_s": round(ratio, 2),
            "speedup_payload_only_reads_per_s": round(payload_ratio, 2),
            "goal_speedup": 5.0,
            "goal_met": ratio >= 5,
            "cache_hits": cached.hits,
            "cache_misses": cached.misses,
            "redis_errors": cached.redis_errors,
        }
    finally:
        await payload_only.redis.aclose()
        await cached.close()  # closes the SQL store too
        cleaner = make_redis_client(REDIS_URL)
        keys = [key async for key in cleaner.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await cleaner.delete(*keys)
        await cleaner.aclose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> dict[str, Any]:
    """Run the benchmark; print the table and return the figures."""
    return asyncio.run(_bench())
