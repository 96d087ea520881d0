"""After a run: what the database holds against what the client was told, and each fault judged.

Read straight from PostgreSQL (not through the proxy): every row of ``ai_feedback``.

* lost: acknowledged ids with no row; duplicates: rows beyond one per (trace, kind), or
  one post acknowledged under two ids; extra: rows no acknowledgement names.
* context: each row rating a trace must hold that trace's exchange (the question and the
  answer the client saw), whichever worker captured it, except rows whose exchange a fault
  legitimately lost (captured in or just before a Redis cut, or queued in a killed worker).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bench.soak.faults import FaultReport
from bench.soak.load import LoadResult, PostRecord, TraceRecord, percentile
from bench.soak.services import HOST, PG_PORT

REDIS_GRACE = 2.0
"""Seconds after a Redis cut during which exchanges may still be missing (the store's pause)."""


@dataclass(frozen=True)
class Row:
    """The columns of one stored feedback row that the checks read."""

    id: str
    trace_id: str | None
    kind: str
    context: dict[str, Any]
    metadata: dict[str, Any]


async def stored_rows(database: str) -> list[Row]:
    """Every row of ``ai_feedback`` in ``database`` (empty if the table was never made)."""
    import asyncpg

    conn = await asyncpg.connect(host=HOST, port=PG_PORT, user="postgres", database=database)
    try:
        exists = await conn.fetchval("SELECT to_regclass('ai_feedback') IS NOT NULL")
        if not exists:
            return []
        records = await conn.fetch(
            "SELECT id, trace_id, kind, context, metadata FROM ai_feedback"
        )
    finally:
        await conn.close()
    return [Row(r["id"], r["trace_id"], r["kind"], json.loads(r["context"]),
                json.loads(r["metadata"])) for r in records]


KILL_AFTERMATH = 10.0
"""Seconds after a worker kill during which exchanges may be missing (see ``_context_exempt``)."""


def _in(window: tuple[float, float], moment: float | None) -> bool:
    return moment is not None and window[0] <= moment <= window[1]


def _context_exempt(trace: TraceRecord, post: PostRecord, faults: list[FaultReport]) -> bool:
    for fault in faults:
        if fault.name == "redis cut":
            window = (fault.started - 1.0, fault.ended + REDIS_GRACE)
            if _in(window, trace.finished) or _in(window, post.acked_at):
                return True
        if fault.name == "worker SIGKILL":
            # the victim's queued exchanges die with it; then one worker takes the whole
            # load until the replacement serves, and its Redis calls may time out
            aftermath = (fault.started - 1.0, fault.ended + KILL_AFTERMATH)
            if _in(aftermath, trace.finished) or _in(aftermath, post.acked_at):
                return True
    return False


MAX_EXAMPLES = 20
"""Rows with a context problem described in the figures (when, which workers)."""


def _example(problem: str, post: PostRecord, load: LoadResult,
             faults: list[FaultReport]) -> dict[str, Any]:
    """One problem row: when its trace and post happened, relative to the run and the faults."""
    trace = post.trace

    def since(moment: float | None, origin: float) -> float | None:
        return None if moment is None else round(moment - origin, 3)

    return {
        "problem": problem,
        "trace_finished_s": since(trace.finished, load.started),
        "acked_s": since(post.acked_at, load.started),
        "acked_after_trace_s": since(post.acked_at, trace.finished),
        "capturing_worker": trace.worker,
        "storing_worker": post.worker,
        "attempts": post.attempts,
        "after_faults_s": {fault.name: since(trace.finished, fault.ended) for fault in faults},
    }


def _context_problem(row: Row, post: PostRecord) -> str | None:
    trace = post.trace
    context = row.context
    if context.get("trace_id") != trace.trace_id:
        return "trace_id"
    if context.get("input") != trace.message or context.get("output") != trace.reply:
        return "missing" if "input" not in context else "different"
    return None


def _judge(fault: FaultReport, load: LoadResult, stored_ids: set[str],
           next_fault: float) -> dict[str, Any]:
    """Whether the app survived ``fault``, with the figures that say so.

    ``next_fault``: when the next fault started (its effects are not this one's).
    """
    start, end = fault.started, fault.ended
    # requests sent once the fault was on and answered before it ended
    during = [a for a in load.answers if start + 0.2 <= a.at - a.seconds and a.at <= end]
    chats_during = [a for a in during if a.route == "chat"]
    posts_during = [a for a in during if a.route == "post" and a.status is not None]
    acked_after = [p for p in load.acked if p.acked_at is not None and p.acked_at > end]
    figures: dict[str, Any] = {"name": fault.name, **fault.details,
                               "seconds": round(end - start, 2)}
    if fault.name == "postgres cut":
        statuses = Counter(a.status for a in posts_during)
        figures.update(
            posts_answered_during=len(posts_during),
            post_statuses_during=dict(statuses),
            all_503_with_retry_after=all(a.retry_after for a in posts_during if a.status == 503),
            app_route_answers_during=len(chats_during),
            app_route_non_2xx_during=sum(1 for a in chats_during if not _ok(a.status)),
            acked_after_restore=len(acked_after),
            recovery_seconds=round(min((p.acked_at or end) for p in acked_after) - end, 2)
            if acked_after else None,
        )
        figures["survived"] = bool(
            statuses and set(statuses) == {503} and figures["all_503_with_retry_after"]
            and chats_during and figures["app_route_non_2xx_during"] == 0 and acked_after
        )
    elif fault.name == "redis cut":
        window = [a for a in load.answers
                  if start <= a.at <= min(end + REDIS_GRACE, next_fault)]
        failed = [a for a in window if not _ok(a.status)]
        figures.update(
            answers_during=len(window),
            failed_during=len(failed),
            failures=dict(Counter(f"{a.route} {a.status or a.error}" for a in failed)),
            acked_during=sum(1 for p in load.acked if _in((start, end), p.acked_at)),
            chats_during=sum(1 for a in window if a.route == "chat"),
        )
        figures["survived"] = bool(window and not failed and figures["acked_during"]
                                   and figures["chats_during"])
    elif fault.name == "worker SIGKILL":
        by_victim = [p for p in load.acked if p.worker == fault.details["pid"]]
        lost = [p for p in by_victim if p.acked_id not in stored_ids]
        figures.update(acked_by_killed_worker=len(by_victim), lost_of_killed_worker=len(lost),
                       acked_after=len(acked_after))
        figures["survived"] = bool(by_victim and not lost and acked_after
                                   and fault.details.get("replaced"))
    elif fault.name == "SIGTERM drain":
        figures["survived"] = bool(fault.details.get("exchanges_missing") == 0
                                   and fault.details.get("exit_seconds") is not None
                                   and fault.details.get("lost") == 0)
    return figures


def _ok(status: int | None) -> bool:
    return status is not None and 200 <= status < 300


def evaluate(load: LoadResult, rows: list[Row], faults: list[FaultReport]) -> dict[str, Any]:
    """The run's figures (see the module docstring)."""
    stored_ids = {row.id for row in rows}
    acked = load.acked
    acked_ids = {post.acked_id for post in acked if post.acked_id is not None}
    per_slot = Counter((row.trace_id, row.kind) for row in rows)
    duplicate_rows = sum(count - 1 for count in per_slot.values() if count > 1)
    post_ids = Counter(post.key for post in acked)
    by_id = {post.acked_id: post for post in acked}
    checked = cross_worker = exempt = missing_in_faults = 0
    problems: Counter[str] = Counter()
    examples: list[dict[str, Any]] = []
    for row in rows:
        post = by_id.get(row.id)
        if post is None:
            continue
        if _context_exempt(post.trace, post, faults):
            exempt += 1
            missing_in_faults += _context_problem(row, post) is not None
            continue
        checked += 1
        cross_worker += post.trace.worker != post.worker
        problem = _context_problem(row, post)
        if problem is not None:
            problems[problem] += 1
            if len(examples) < MAX_EXAMPLES:
                examples.append(_example(problem, post, load, faults))
    post_seconds = [a.seconds for a in load.answers if a.route == "post" and a.status]
    statuses = load.statuses("post")
    other_5xx = sum(n for s, n in statuses.items() if s is not None and s >= 500 and s != 503)
    other_5xx += sum(n for s, n in load.statuses("chat").items() if s is not None and s >= 500)
    figures: dict[str, Any] = {
        "traces": len(load.traces),
        "posts_sent": len(load.posts),
        "post_requests": sum(statuses.values()),
        "acknowledged": len(acked_ids),
        "stored": len(rows),
        "duplicates": duplicate_rows + sum(n - 1 for n in post_ids.values() if n > 1),
        "lost": len(acked_ids - stored_ids),
        "stored_not_acknowledged": len(stored_ids - acked_ids),
        "refused_4xx": sum(1 for post in load.posts if post.refused is not None),
        "unacknowledged": sum(1 for post in load.posts if post.acked_id is None),
        "status_503": statuses.get(503, 0),
        "other_5xx": other_5xx,
        "connection_errors": statuses.get(None, 0) + load.statuses("chat").get(None, 0),
        "post_p50_ms": round(percentile(post_seconds, 0.50) * 1000, 1),
        "post_p99_ms": round(percentile(post_seconds, 0.99) * 1000, 1),
        "context_checked": checked,
        "context_cross_worker": cross_worker,
        "context_fault_exempt": exempt,
        "context_missing_in_fault_windows": missing_in_faults,
        "context_problems": dict(problems),
        "context_problem_examples": examples,
        "load_seconds": round(load.finished - load.started, 1),
        "deadline_hit": load.deadline_hit,
    }
    starts = [fault.started for fault in faults[1:]] + [float("inf")]
    figures["faults"] = [_judge(fault, load, stored_ids, next_start)
                         for fault, next_start in zip(faults, starts, strict=True)]
    return figures
