"""Export benchmark on PostgreSQL: ``python -m bench export``.

In a database of its own (created, then dropped): 1,000,000 live rows over 30 days and
20 models (thumbs 50%, ratings 35%, corrections 5%, text 10%; plain-text input/output in
the context), loaded with ``INSERT ... SELECT generate_series``. Then, alternating in the
same run, each variant in a fresh process (so its peak RSS is its own, read from VmHWM):

* ``export``: ``write_export(store, ExportOptions(kind=finetune))`` to a file: the
  ``feedback-asgi export finetune`` path (PostgreSQL fast path);
* ``raw``: an asyncpg server-side cursor over the same rows (10,000 per fetch), jsonb
  decoded, one ``json.dumps`` per row, written as JSONL: the anchor's "raw dump"
  (``../shared/bench-anchors/dump.py``);
* once, for information: ``export-generic``, the same export through ``iter_items`` and
  ``FeedbackItem`` (what every other store does).

rows/s = rows of the window read / seconds, for every variant (the same rows). Goal:
export >= 1.0x raw, peak RSS <= 100 MB. Figures move on this shared 2-core machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import IO, Any

import asyncpg

PG = "postgres@127.0.0.1:5432"
ROWS = 1_000_000
ROUNDS = 3
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
                 WHEN 'correction' THEN jsonb_build_object('original', 'The policy says ' || n,
                                                           'corrected', 'The policy states ' || n)
                 ELSE to_jsonb('The answer was long'::text) END,
       jsonb_build_object('trace_id', trace_id, 'session_id', session_id, 'user_id', user_id,
                          'model', model, 'provider', provider,
                          'input', 'What is the policy on item ' || n || '?',
                          'output', 'The policy says ' || n || ': see section 4.2 of the handbook.'),
       CASE WHEN r3 < 0.3 THEN jsonb_build_object('source', 'widget', 'comment', 'not quite')
            ELSE jsonb_build_object('source', 'widget') END
FROM (SELECT gen_random_uuid()::text AS id,
             CASE WHEN r1 < 0.50 THEN 'thumbs' WHEN r1 < 0.85 THEN 'rating'
                  WHEN r1 < 0.90 THEN 'correction' ELSE 'text' END AS kind,
             $3::timestamptz - interval '30 days' + (i / $1::float8) * interval '30 days'
               AS created_at,
             md5(i::text) AS trace_id,
             'sess_' || floor(r3 * 200000)::int AS session_id,
             'user_' || floor(r3 * 50000)::int AS user_id,
             ($2::text[])[1 + floor(power(r4, 1.6) * 20)::int] AS model,
             (ARRAY['openai', 'anthropic', 'google'])[1 + floor(r4 * 3)::int] AS provider,
             r2, r3, i % 5000 AS n
      FROM (SELECT i, random() r1, random() r2, random() r3, random() r4
            FROM generate_series(1, $1::int) AS i) AS raw) AS gen
"""

RAW_QUERY = ("SELECT id, created_at, kind, value, context, session_id, trace_id, model "
             "FROM ai_feedback WHERE is_live AND created_at >= $1 AND created_at < $2")


def _dsn(database: str) -> str:
    return f"postgresql://{PG}/{database}"


def _url(database: str) -> str:
    return f"postgresql+asyncpg://{PG}/{database}"


def _peak_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _raw_line(r: Any) -> str:
    return json.dumps({"id": r[0], "created_at": r[1].isoformat(), "type": r[2], "value": r[3],
                       "context": r[4], "session_id": r[5], "trace_id": r[6], "model": r[7]}) + "\n"


async def _child(variant: str, database: str, out: IO[str], since: datetime, until: datetime
                 ) -> dict[str, Any]:
    """One variant, run in this (fresh) process, writing to ``out``."""
    rows = 0
    written = 0
    if variant == "raw":
        conn = await asyncpg.connect(_dsn(database))
        await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads,
                                  schema="pg_catalog")
        started = time.perf_counter()
        async with conn.transaction():
            cursor = await conn.cursor(RAW_QUERY, since, until)
            while batch := await cursor.fetch(10_000):
                out.write("".join(map(_raw_line, batch)))
                rows += len(batch)
        written = rows
        await conn.close()
    else:
        from feedback_asgi.export import ExportOptions, write_export
        from feedback_asgi.storage.sql.store import SqlFeedbackStore

        store = SqlFeedbackStore(_url(database))
        await store.ping()
        started = time.perf_counter()
        report = await write_export(store, ExportOptions(since=since, until=until), out.write,
                                    fast_path=variant == "export")
        rows, written = report.scanned, report.written
        await store.close()
    out.flush()
    seconds = time.perf_counter() - started
    return {"variant": variant, "rows": rows, "lines": written, "seconds": round(seconds, 2),
            "rows_per_s": round(rows / seconds), "bytes": out.tell(),
            "peak_rss_mb": round(_peak_mb(), 1)}


def _run_child(variant: str, database: str, since: datetime, until: datetime) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        proc = subprocess.run(
            [sys.executable, "-m", "bench.bench_export", "--child", variant, database,
             os.path.join(folder, "out.jsonl"), since.isoformat(), until.isoformat()],
            capture_output=True, text=True, timeout=600, check=True,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


async def _load(database: str, now: datetime) -> dict[str, Any]:
    from feedback_asgi.storage.sql.store import SqlFeedbackStore

    store = SqlFeedbackStore(_url(database))
    await store.read_engine()  # creates the tables and indexes
    await store.close()
    conn = await asyncpg.connect(_dsn(database))
    try:
        started = time.perf_counter()
        await conn.execute(FILL, ROWS, MODELS, now)
        await conn.execute("VACUUM (ANALYZE) ai_feedback")
        load_s = time.perf_counter() - started
        size = await conn.fetchval("SELECT pg_size_pretty(pg_total_relation_size('ai_feedback'))")
    finally:
        await conn.close()
    return {"rows": ROWS, "load_s": round(load_s, 1), "table_size": size}


async def _run() -> dict[str, Any]:
    database = f"fa_bench_export_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(_dsn("postgres"))
    await admin.execute(f'CREATE DATABASE "{database}"')
    now = datetime.now(UTC).replace(microsecond=0)
    since, until = now - timedelta(days=31), now + timedelta(seconds=1)
    runs: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(TIME_LIMIT_S):
            print("loading 1,000,000 rows ...", flush=True)
            load = await _load(database, now)
            for round_no in range(ROUNDS):
                order = ["export", "raw"] if round_no % 2 == 0 else ["raw", "export"]
                for variant in order:
                    result = await asyncio.to_thread(_run_child, variant, database, since, until)
                    result["round"] = round_no + 1
                    print(json.dumps(result), flush=True)
                    runs.append(result)
            generic = await asyncio.to_thread(_run_child, "export-generic", database, since, until)
            print(json.dumps(generic), flush=True)
            runs.append(generic)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
    return _summary(load, runs)


def _summary(load: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    def of(variant: str) -> list[dict[str, Any]]:
        return [r for r in runs if r["variant"] == variant]

    export_rate = statistics.median(r["rows_per_s"] for r in of("export"))
    raw_rate = statistics.median(r["rows_per_s"] for r in of("raw"))
    per_round = [e["rows_per_s"] / r["rows_per_s"] for e, r in
                 zip(of("export"), of("raw"), strict=True)]
    return {
        "load": load,
        "runs": runs,
        "export_rows_per_s": round(export_rate),
        "raw_rows_per_s": round(raw_rate),
        "ratio": round(export_rate / raw_rate, 2),
        "per_round_ratio": [round(x, 2) for x in per_round],
        "export_peak_rss_mb": max(r["peak_rss_mb"] for r in of("export")),
        "raw_peak_rss_mb": max(r["peak_rss_mb"] for r in of("raw")),
        "generic_rows_per_s": of("export-generic")[0]["rows_per_s"],
        "generic_peak_rss_mb": of("export-generic")[0]["peak_rss_mb"],
    }


def _table(f: dict[str, Any]) -> str:
    e = next(r for r in f["runs"] if r["variant"] == "export")
    lines = [
        "| variant | rows/s (median) | ratio to raw | peak RSS MB (max) | goal |",
        "|---|---:|---:|---:|---|",
        f"| export finetune (fast path) | **{f['export_rows_per_s']:,}** | **{f['ratio']}x** "
        f"(per round {', '.join(map(str, f['per_round_ratio']))}) | **{f['export_peak_rss_mb']}** "
        "| >= 1.0x raw, <= 100 MB |",
        f"| raw asyncpg cursor dump, json.dumps per row | {f['raw_rows_per_s']:,} | 1.00 | "
        f"{f['raw_peak_rss_mb']} | |",
        f"| export finetune, generic path (iter_items; info) | {f['generic_rows_per_s']:,} | "
        f"{f['generic_rows_per_s'] / f['raw_rows_per_s']:.2f} | {f['generic_peak_rss_mb']} | |",
        f"\n{f['load']['rows']:,} rows ({f['load']['table_size']}), loaded in "
        f"{f['load']['load_s']} s; export wrote {e['lines']:,} lines ({e['bytes'] / 2**20:.0f} MB) "
        f"of {e['rows']:,} rows",
    ]
    return "\n".join(lines)


def main() -> dict[str, Any]:
    """Load the rows, run the variants alternating, print the table, return the figures."""
    figures = asyncio.run(_run())
    print(_table(figures), flush=True)
    return figures


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "--child":
        _, _, variant, database, path, since, until = sys.argv
        with open(path, "w", buffering=1 << 20) as target:
            result = asyncio.run(_child(variant, database, target, datetime.fromisoformat(since),
                                        datetime.fromisoformat(until)))
        print(json.dumps(result))
    else:
        main()
