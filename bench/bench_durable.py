"""Durable ``POST /feedback`` (201 only after COMMIT) against hand-written endpoints.

One uvicorn (1 worker, uvloop + httptools) per variant and run, ``wrk -t1 -c64`` with a Lua
script posting ~300-byte feedback bodies, each with a distinct trace id and a valid token
(signed here with the app's secret), so no request takes the one-vote or idempotency path.
Variants alternate round by round; before each run the tables are emptied (PostgreSQL:
``TRUNCATE`` then ``CHECKPOINT``; SQLite: a new file), and after it the rows stored are
checked against the 201 answers counted by wrk.

Goals (issue 5), at 64 connections: on PostgreSQL >= 2.0x the SQLAlchemy Core endpoint and
>= 1.0x the raw asyncpg one; on SQLite >= 2.0x the aiosqlite one.

Uses a PostgreSQL database of its own (created, then dropped). ``BENCH_ROUNDS`` (default 3),
``BENCH_SECONDS`` (default 8), ``BENCH_WARM`` (default 2), ``BENCH_VARIANTS`` change the run.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

from bench.harness import (
    Server,
    alternate,
    ensure_wrk,
    median,
    pick,
    request,
    rounds_and_seconds,
    spread,
    table,
    wrk,
)

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
DATABASE = f"fa_bench_{uuid.uuid4().hex[:8]}"
PG_URL = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{DATABASE}"
SCRATCH = Path("/tmp/feedback-asgi-bench")
SECRET = "bench-secret-key-0123456789abcdef"
CONNECTIONS = 64
TOKENS_PER_SECOND = 9_000  # more than any variant answers, so no trace repeats

# variant -> (app variant, database, table)
VARIANTS: dict[str, tuple[str, str, str]] = {
    "feedback_pg": ("feedback", "postgresql", "ai_feedback"),
    "sqlalchemy_pg": ("sqlalchemy", "postgresql", "bench_feedback"),
    "asyncpg_pg": ("asyncpg", "postgresql", "bench_feedback"),
    "feedback_sqlite": ("feedback", "sqlite", "ai_feedback"),
    "aiosqlite": ("aiosqlite", "sqlite", "bench_feedback"),
    "nostore": ("nostore", "none", ""),
}
NAMES = {
    "feedback_pg": "feedback-asgi POST /feedback, PostgreSQL (group commit)",
    "sqlalchemy_pg": "hand-written: SQLAlchemy 2 async Core + asyncpg, pool 20",
    "asyncpg_pg": "hand-written: raw asyncpg pool, 20 connections",
    "feedback_sqlite": "feedback-asgi POST /feedback, SQLite (group commit)",
    "aiosqlite": "hand-written: SQLAlchemy async Core + aiosqlite, WAL, pool 1",
    "nostore": "hand-written, no store (validate, build row, 201): ceiling",
}
GOALS = (("feedback_pg", "sqlalchemy_pg", 2.0), ("feedback_pg", "asyncpg_pg", 1.0),
         ("feedback_sqlite", "aiosqlite", 2.0))
PG_TABLE = """
CREATE TABLE IF NOT EXISTS bench_feedback (
    id uuid PRIMARY KEY, created_at timestamptz NOT NULL, type text NOT NULL,
    value jsonb, comment text, metadata jsonb, trace_id text);
CREATE INDEX IF NOT EXISTS ix_bench_feedback_trace ON bench_feedback (trace_id);
CREATE INDEX IF NOT EXISTS ix_bench_feedback_created ON bench_feedback (created_at)
"""
SQLITE_TABLE = """
CREATE TABLE IF NOT EXISTS bench_feedback (
    id CHAR(32) PRIMARY KEY, created_at DATETIME NOT NULL, type TEXT NOT NULL,
    value JSON, comment TEXT, metadata JSON, trace_id TEXT);
CREATE INDEX IF NOT EXISTS ix_bench_feedback_trace ON bench_feedback (trace_id);
CREATE INDEX IF NOT EXISTS ix_bench_feedback_created ON bench_feedback (created_at)
"""


def _sqlite_path(variant: str) -> Path:
    return SCRATCH / f"{variant}.db"


def _db_url(variant: str) -> str:
    _, database, _ = VARIANTS[variant]
    if database == "postgresql":
        return PG_URL
    if database == "sqlite":
        return f"sqlite+aiosqlite:///{_sqlite_path(variant)}"
    return ""


async def _pg(sql: str, database: str = DATABASE) -> Any:
    import asyncpg

    conn = await asyncpg.connect(**PG, database=database)
    try:
        return await conn.fetchval(sql) if sql.lstrip().upper().startswith("SELECT") \
            else await conn.execute(sql)
    finally:
        await conn.close()


def _reset(variant: str) -> None:
    _, database, table_name = VARIANTS[variant]
    if database == "postgresql":
        exists = asyncio.run(_pg(f"SELECT to_regclass('{table_name}') IS NOT NULL"))
        if exists:
            asyncio.run(_pg(f"TRUNCATE {table_name}"))
        asyncio.run(_pg("CHECKPOINT"))
    elif database == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{_sqlite_path(variant)}{suffix}").unlink(missing_ok=True)
        if table_name == "bench_feedback":
            with sqlite3.connect(_sqlite_path(variant)) as conn:
                conn.executescript(SQLITE_TABLE)


def _count(variant: str) -> int | None:
    _, database, table_name = VARIANTS[variant]
    if database == "postgresql":
        return int(asyncio.run(_pg(f"SELECT count(*) FROM {table_name}")))
    if database == "sqlite":
        with sqlite3.connect(_sqlite_path(variant)) as conn:
            return int(conn.execute(f"SELECT count(*) FROM {table_name}").fetchone()[0])
    return None


def _tokens(path: Path, count: int) -> list[tuple[str, str]]:
    """``count`` fresh traces with valid anonymous tokens, one ``trace token`` per line."""
    from feedback_asgi.core.tokens import TokenSigner

    signer = TokenSigner([SECRET.encode()], ttl_seconds=3600)
    pairs = []
    for _ in range(count):
        trace = os.urandom(16).hex()
        pairs.append((trace, signer.sign(trace)))
    path.write_text("".join(f"{trace} {token}\n" for trace, token in pairs))
    return pairs


def _probe(variant: str) -> int:
    """One feedback through the server; it must be answered 201."""
    trace, token = _tokens(SCRATCH / "probe-tokens.txt", 1)[0]
    body = (f'{{"trace_id":"{trace}","type":"rating","value":4,"comment":"probe",'
            f'"metadata":{{"route":"/chat"}}}}').encode()
    status, _, answer = request("POST", "/feedback", body, {"X-Feedback-Token": token})
    if status != 201:
        raise RuntimeError(f"{variant}: probe answered {status}: {answer[:300]!r}")
    return 1


def _run(warm: int, seconds: int) -> Any:
    def run(_round: int, variant: str) -> list[dict[str, Any]]:
        app_variant, _, _ = VARIANTS[variant]
        _reset(variant)
        env = {"BENCH_VARIANT": app_variant, "BENCH_DB_URL": _db_url(variant)}
        with Server("bench.apps.durable_app:app", env, SCRATCH / "logs" / f"durable-{variant}.log"):
            sent = _probe(variant)
            warm_file, main_file = SCRATCH / "tokens-warm.txt", SCRATCH / "tokens-main.txt"
            _tokens(warm_file, TOKENS_PER_SECOND * warm)
            _tokens(main_file, TOKENS_PER_SECOND * seconds)
            warmed = wrk("/feedback", CONNECTIONS, warm, "post_feedback.lua", [str(warm_file)])
            row = wrk("/feedback", CONNECTIONS, seconds, "post_feedback.lua", [str(main_file)])
            sent += warmed["requests"] + row["requests"]
            answered = sent - warmed["non2xx"] - row["non2xx"]
        stored = _count(variant)
        return [{"endpoint": "POST /feedback", **row, "answered_2xx": answered,
                 "rows_stored": stored,
                 "tokens_exhausted": row["requests"] > TOKENS_PER_SECOND * seconds}]

    return run


def main() -> dict[str, Any]:
    ensure_wrk()
    SCRATCH.mkdir(parents=True, exist_ok=True)
    rounds, warm, seconds = rounds_and_seconds(3, 8)
    wanted = os.environ.get("BENCH_VARIANTS")
    variants = wanted.split(",") if wanted else list(VARIANTS)
    asyncio.run(_pg(f'CREATE DATABASE "{DATABASE}"', "postgres"))
    try:
        for statement in PG_TABLE.split(";"):
            asyncio.run(_pg(statement))
        print(f"durable: {rounds} rounds x {len(variants)} variants, wrk -t1 -c{CONNECTIONS}, "
              f"{warm}s warm-up + {seconds}s; database {DATABASE}", flush=True)
        started = time.time()
        rows = alternate(variants, rounds, _run(warm, seconds))
    finally:
        asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)', "postgres"))
        for variant in VARIANTS:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{_sqlite_path(variant)}{suffix}").unlink(missing_ok=True)

    medians = {v: median(r["rps"] for r in pick(rows, variant=v)) for v in variants}
    summary: dict[str, Any] = {}
    body = []
    for variant in variants:
        mine = pick(rows, variant=variant)
        rps = [r["rps"] for r in mine]
        stored_ok = all(r["rows_stored"] is None or r["rows_stored"] >= r["answered_2xx"]
                        for r in mine)
        summary[variant] = {
            "rps_median": round(medians[variant], 1),
            "p50_ms_median": round(median(r["p50_ms"] for r in mine), 2),
            "p99_ms_median": round(median(r["p99_ms"] for r in mine), 2),
            "spread": round(spread(rps), 3),
            "rows_stored_vs_answered": [(r["rows_stored"], r["answered_2xx"]) for r in mine],
            "no_acknowledged_row_lost": stored_ok,
        }
        checks = ("no store" if VARIANTS[variant][1] == "none" else
                  ("all >= answered" if stored_ok else "LOST ROWS") + " (" + ", ".join(
                      f"{r['rows_stored']}/{r['answered_2xx']}" for r in mine) + ")")
        body.append([NAMES[variant], f"{medians[variant]:,.0f}",
                     f"{median(r['p50_ms'] for r in mine):.1f}",
                     f"{median(r['p99_ms'] for r in mine):.1f}", f"{spread(rps) * 100:.0f}%",
                     checks])
    print()
    print(table(["variant", "c64 req/s", "p50 ms", "p99 ms", "spread",
                 "rows stored / 201s answered"], body))
    errors = [r for r in rows if r["non2xx"] or r["socket_errors"]]
    print(f"\nRuns with non-2xx responses or socket errors: {len(errors)} of {len(rows)}.")
    goals: dict[str, Any] = {}
    for ours, reference, goal in GOALS:
        if ours in medians and reference in medians and medians[reference]:
            ratio = medians[ours] / medians[reference]
            per_round = sorted(
                a["rps"] / b["rps"] for a in pick(rows, variant=ours)
                for b in pick(rows, variant=reference) if a["round"] == b["round"])
            goals[f"{ours}/{reference}"] = {"goal": goal, "ratio": round(ratio, 3),
                                            "per_round": [round(x, 3) for x in per_round],
                                            "met": ratio >= goal}
            print(f"goal {ours} >= {goal:.1f}x {reference}: {ratio:.2f}x "
                  f"(per round {per_round[0]:.2f}-{per_round[-1]:.2f}) "
                  f"{'met' if ratio >= goal else 'NOT met'}")
    return {"rounds": rounds, "seconds": seconds, "warm_seconds": warm,
            "connections": CONNECTIONS, "minutes": round((time.time() - started) / 60, 1),
            "summary": summary, "goals": goals, "errors": len(errors), "runs": rows}
