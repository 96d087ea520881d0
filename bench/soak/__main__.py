"""``python -m bench.soak [POSTS]``: the reliability scenarios at full size (``make soak``).

4 uvicorn workers, 50,000 posts at concurrency 128, PostgreSQL cut, Redis cut and a worker
SIGKILL along the way, SIGTERM while posts are in flight at the end. Prints the table and
writes ``bench/results/soak.json``; exits 1 if anything acknowledged was lost, duplicated,
or answered with a 5xx other than 503, or a fault was not survived.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from bench.soak.faults import PostgresCut, RedisCut, WorkerKill
from bench.soak.scenario import FULL_SIZE, run

RESULTS = Path(__file__).resolve().parents[1] / "results"


def table(figures: dict[str, Any], size: Any) -> str:
    """The figures as a Markdown table."""
    rows = [
        ("workers / concurrency", f"{size.workers} / {size.concurrency}"),
        ("posts sent", figures["posts_sent"]),
        ("acknowledged (201)", figures["acknowledged"]),
        ("stored", figures["stored"]),
        ("duplicates", figures["duplicates"]),
        ("lost", figures["lost"]),
        ("5xx other than 503", figures["other_5xx"]),
        ("503 answers (retried)", figures["status_503"]),
        ("POST /feedback p50 / p99", f"{figures['post_p50_ms']} ms / {figures['post_p99_ms']} ms"),
        ("rows checked for their exchange", f"{figures['context_checked']} "
         f"({figures['context_cross_worker']} captured by another worker), "
         f"problems: {figures['context_problems'] or 0}"),
    ]
    faults = figures["faults"]
    survived = sum(1 for fault in faults if fault["survived"])
    rows.append(("faults injected / survived", f"{len(faults)} / {survived}"))
    for fault in faults:
        rows.append((f"  {fault['name']}", "survived" if fault["survived"] else "NOT survived"))
    width = max(len(str(name)) for name, _ in rows)
    lines = [f"| {'figure':<{width}} | value |", f"|{'-' * (width + 2)}|-------|"]
    lines += [f"| {name:<{width}} | {value} |" for name, value in rows]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    size = FULL_SIZE
    if argv:
        size = dataclasses.replace(size, posts=int(argv[0]))
    faults = [PostgresCut(at=0.2, hold=5.0), RedisCut(at=0.45, hold=5.0), WorkerKill(at=0.7)]
    started = time.time()
    report = asyncio.run(run(size, faults, drain=True, log_dir=RESULTS))
    figures = report.figures
    print(table(figures, size))
    print(json.dumps(figures["faults"], indent=1))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "soak.json"
    out.write_text(json.dumps({
        "bench": "soak",
        "command": "make soak",
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.time() - started, 1),
        "python": platform.python_version(),
        "size": dataclasses.asdict(size),
        "figures": figures,
    }, indent=2) + "\n")
    print(f"--> {out}")
    bad = (figures["lost"] or figures["duplicates"] or figures["other_5xx"]
           or not all(fault["survived"] for fault in figures["faults"]))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
