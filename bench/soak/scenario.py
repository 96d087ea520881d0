"""One run: services up, load with faults, optional SIGTERM drain, checks, clean-up.

``await run(SoakSize(...), faults=[...], drain=True)`` returns a :class:`RunReport`; the
bounded tests in ``tests/reliability`` and ``python -m bench.soak`` both call it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.soak.faults import Fault, FaultReport, Targets, run_faults
from bench.soak.load import Answer, LoadClient, LoadResult, PostRecord
from bench.soak.services import (
    PG_PORT,
    REDIS_PORT,
    SECRET,
    AppServer,
    ProxyProcess,
    create_database,
    delete_redis_prefix,
    drop_database,
    unique,
)
from bench.soak.verify import Row, evaluate, stored_rows


@dataclass(frozen=True)
class SoakSize:
    """How big a run is."""

    workers: int = 2
    posts: int = 600
    concurrency: int = 128
    kinds: int = 2
    """Feedback kinds posted per trace (so traces = posts / kinds)."""
    seconds: float = 60.0
    """Bound on the load phase; posts not acknowledged by then stay unacknowledged."""
    retry_cap_seconds: float = 0.5
    """Longest wait between retries of one post (the app's Retry-After is 5)."""
    drain_traces: int = 100
    """Answers obtained just before SIGTERM, whose exchanges must be drained to Redis."""


TEST_SIZE = SoakSize()
FULL_SIZE = SoakSize(workers=4, posts=50_000, seconds=1500.0, drain_traces=1000)


@dataclass
class RunReport:
    """What a run did and found."""

    figures: dict[str, Any]
    load: LoadResult
    rows: list[Row]
    faults: list[FaultReport] = field(default_factory=list)
    log: Path | None = None


def _env(database: str, postgres: ProxyProcess, redis: ProxyProcess, prefix: str) -> dict[str, str]:
    return {
        "FEEDBACK_ASGI_DATABASE_URL":
            f"postgresql+asyncpg://postgres@127.0.0.1:{postgres.port}/{database}",
        "FEEDBACK_ASGI_REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
        "FEEDBACK_ASGI_REDIS_KEY_PREFIX": prefix,
        "FEEDBACK_ASGI_SECRET_KEY": SECRET,
        "FEEDBACK_ASGI_CONNECT_TIMEOUT_SECONDS": "1.0",
    }


async def _exchanges_in_redis(prefix: str, trace_ids: list[str]) -> int:
    import redis.asyncio as redis

    client = redis.Redis.from_url(f"redis://127.0.0.1:{REDIS_PORT}/0")
    try:
        found = 0
        for start in range(0, len(trace_ids), 500):
            keys = [f"{prefix}exchange:r:{trace}" for trace in trace_ids[start : start + 500]]
            found += int(await client.exists(*keys))
        return found
    finally:
        await client.aclose()


async def _sigterm_drain(server: AppServer, load: LoadClient, count: int, prefix: str,
                         first_index: int) -> tuple[FaultReport, list[PostRecord]]:
    """Answers, then posts in flight, then SIGTERM; the exchanges must all reach Redis."""
    load.set_deadline(20.0)
    answers: list[Answer] = []
    load.answers = answers
    async with load.client() as http:
        chats = await asyncio.gather(*(load.chat(http, first_index + i) for i in range(count)))
        traces = [trace for trace in chats if trace is not None]
        posts = [PostRecord(trace, "thumbs", f"{load.run_id}-drain-{trace.index}")
                 for trace in traces]
        load.result.posts.extend(posts)
        tasks = [asyncio.create_task(load.post(http, post, "down")) for post in posts]
        await asyncio.sleep(0.01)  # the first posts are on the wire
        started = time.monotonic()
        load.set_deadline(3.0)  # once the server is gone, stop retrying soon
        try:
            exit_seconds: float | None = await asyncio.to_thread(server.terminate, 30.0)
        except TimeoutError:
            exit_seconds = None
        await asyncio.gather(*tasks)
    found = await _exchanges_in_redis(prefix, [trace.trace_id for trace in traces])
    details = {"traces": len(traces), "exchanges_missing": len(traces) - found,
               "exit_seconds": round(exit_seconds, 2) if exit_seconds is not None else None,
               "posts_in_flight": len(posts),
               "acked_in_flight": sum(1 for post in posts if post.acked_id is not None),
               "5xx": sum(1 for a in answers if a.status is not None and a.status >= 500)}
    return FaultReport("SIGTERM drain", started, time.monotonic(), details), posts


async def run(size: SoakSize, faults: list[Fault] | None = None, *, drain: bool = False,
              log_dir: Path | None = None) -> RunReport:
    """Run the load (with ``faults``) against a fresh app, database and Redis prefix."""
    database = await create_database()
    prefix = unique("fa_soak") + ":"
    postgres = ProxyProcess(PG_PORT).start()
    redis = ProxyProcess(REDIS_PORT).start()
    log = (log_dir or Path("/tmp")) / f"{prefix.rstrip(':')}.log"
    server = AppServer(_env(database, postgres, redis, prefix), size.workers, log)
    try:
        await asyncio.to_thread(server.start)
        load = LoadClient(server.base_url, concurrency=size.concurrency, kinds=size.kinds,
                          retry_cap_seconds=size.retry_cap_seconds, run_id=prefix.rstrip(":"))
        targets = Targets(server, postgres, redis, load)
        done = asyncio.Event()
        traces = max(1, size.posts // size.kinds)
        faulting = asyncio.create_task(run_faults(list(faults or []), targets, size.posts, done))
        try:
            await load.run(traces, size.seconds)
        finally:
            done.set()
            reports = await faulting
        if drain:
            report, _ = await _sigterm_drain(server, load, size.drain_traces, prefix, traces)
            reports.append(report)
        else:
            await asyncio.to_thread(server.terminate, 30.0)
        rows = await stored_rows(database)
        stored = {row.id for row in rows}
        for fault in reports:
            if fault.name == "SIGTERM drain":
                fault.details["lost"] = sum(1 for post in load.result.acked
                                            if post.acked_id not in stored)
        return RunReport(evaluate(load.result, rows, reports), load.result, rows, reports, log)
    finally:
        server.kill()
        postgres.close()
        redis.close()
        await drop_database(database)
        await delete_redis_prefix(prefix)
