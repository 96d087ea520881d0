"""Middleware overhead: a FastAPI app bare, with ``FeedbackMiddleware``, and with three peers.

One uvicorn (1 worker, uvloop + httptools, no access log) per variant and run, wrk on
127.0.0.1 (``-t1 -c64``, a warm-up run, then the measured run) against ``GET /json`` and
``POST /echo`` (a 2 KB JSON body echoed back). Variants alternate round by round, so the
ratio of each run to the bare app of the same round absorbs the machine's drift.

Goals (issue 5): with the middleware capturing, >= 0.92x the bare app's req/s on GET and
>= 0.94x on POST, and p99 within 10% of the bare app's in the same round.

``BENCH_ROUNDS`` (default 3), ``BENCH_SECONDS`` (default 8), ``BENCH_WARM`` (default 2),
``BENCH_VARIANTS`` (comma-separated subset) change the run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench.harness import (
    Server,
    alternate,
    ensure_wrk,
    median,
    per_round_ratios,
    pick,
    request,
    rounds_and_seconds,
    spread,
    table,
    wrk,
)

NAMES = {
    "bare": "bare FastAPI",
    "feedback": "FeedbackMiddleware (capturing)",
    "correlation": "asgi-correlation-id",
    "basehttp": "no-op BaseHTTPMiddleware",
    "otel": "OpenTelemetry ASGI + SDK",
    "floor": "floor: minimal capture (uuid4, HMAC, tees, queue)",
}
GOALS = {"GET": 0.92, "POST": 0.94}
P99_TOLERANCE = 1.10
ENDPOINTS = (("GET", "/json", None), ("POST", "/echo", "post_echo.lua"))
LOGS = Path("/tmp/feedback-asgi-bench/logs")


def _echo_body() -> bytes:
    text = (Path(__file__).parent / "lua" / "post_echo.lua").read_text()
    return text.split("[==[", 1)[1].split("]==]", 1)[0].encode()


def _probe(variant: str) -> None:
    """Check the variant answers as expected before loading it."""
    status, headers, _ = request("GET", "/json")
    body = _echo_body()
    status_post, headers_post, echoed = request("POST", "/echo", body)
    if status != 200 or status_post != 200 or len(echoed) < len(body) // 2:
        raise RuntimeError(f"{variant}: probe answered {status}/{status_post}")
    if variant == "feedback" and not ("x-feedback-token" in headers and
                                      "x-feedback-token" in headers_post):
        raise RuntimeError("feedback variant: no X-Feedback-Token header in the probe")


def _run(warm: int, seconds: int) -> Any:
    def run(_round: int, variant: str) -> list[dict[str, Any]]:
        rows = []
        with Server("bench.apps.http_app:app", {"BENCH_VARIANT": variant},
                    LOGS / f"http-{variant}.log"):
            _probe(variant)
            for endpoint, path, script in ENDPOINTS:
                wrk(path, 64, warm, script)
                rows.append({"endpoint": endpoint, **wrk(path, 64, seconds, script)})
        return rows

    return run


def main() -> dict[str, Any]:
    ensure_wrk()
    rounds, warm, seconds = rounds_and_seconds(3, 8)
    wanted = os.environ.get("BENCH_VARIANTS")
    variants = wanted.split(",") if wanted else list(NAMES)
    if "bare" not in variants:
        variants.insert(0, "bare")
    print(f"middleware: {rounds} rounds x {len(variants)} variants x 2 endpoints, "
          f"wrk -t1 -c64, {warm}s warm-up + {seconds}s", flush=True)
    rows = alternate(variants, rounds, _run(warm, seconds))

    summary: dict[str, Any] = {}
    body = []
    for variant in variants:
        cells = [NAMES.get(variant, variant)]
        figures: dict[str, Any] = {}
        for endpoint, _path, _script in ENDPOINTS:
            mine = pick(rows, variant=variant, endpoint=endpoint)
            base = pick(rows, variant="bare", endpoint=endpoint)
            rps = [r["rps"] for r in mine]
            ratio = median(rps) / median(r["rps"] for r in base)
            ratios = per_round_ratios(rows, variant, "bare", endpoint=endpoint)
            p99_ratios = per_round_ratios(rows, variant, "bare", key="p99_ms", endpoint=endpoint)
            figures[endpoint] = {
                "rps_median": round(median(rps), 1),
                "p99_ms_median": round(median(r["p99_ms"] for r in mine), 2),
                "ratio": round(ratio, 3),
                "per_round_ratios": [round(x, 3) for x in ratios],
                "p99_per_round_ratios": [round(x, 3) for x in p99_ratios],
                "p99_ratio_median": round(median(p99_ratios), 3),
                "spread": round(spread(rps), 3),
            }
            cells += [f"{median(rps):,.0f}", f"{median(r['p99_ms'] for r in mine):.1f}",
                      f"**{ratio:.2f}**", f"{ratios[0]:.2f}-{ratios[-1]:.2f}",
                      f"{median(p99_ratios):.2f}"]
        summary[variant] = figures
        body.append(cells)
    header = ["variant"]
    for endpoint, path, _script in ENDPOINTS:
        header += [f"{endpoint} {path} req/s", "p99 ms", "x bare", "per round",
                   "p99 x bare"]
    print()
    print(table(header, body))
    errors = [r for r in rows if r["non2xx"] or r["socket_errors"]]
    print(f"\nRuns with non-2xx responses or socket errors: {len(errors)} of {len(rows)}.")
    goals: dict[str, Any] = {}
    if "feedback" in summary:
        for endpoint, goal in GOALS.items():
            got = summary["feedback"][endpoint]
            goals[endpoint] = {
                "goal": goal, "ratio": got["ratio"], "met": got["ratio"] >= goal,
                "p99_ratio": got["p99_ratio_median"],
                "p99_met": got["p99_ratio_median"] <= P99_TOLERANCE,
            }
            print(f"goal {endpoint}: >= {goal:.2f}x bare -> {got['ratio']:.2f}x "
                  f"({'met' if got['ratio'] >= goal else 'NOT met'}); p99 x bare "
                  f"{got['p99_ratio_median']:.2f} (goal <= {P99_TOLERANCE:.2f}: "
                  f"{'met' if got['p99_ratio_median'] <= P99_TOLERANCE else 'NOT met'})")
    return {"rounds": rounds, "seconds": seconds, "warm_seconds": warm, "connections": 64,
            "summary": summary, "goals": goals, "errors": len(errors), "runs": rows}
