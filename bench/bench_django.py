"""Django: requests/s of a JSON view, bare vs with the feedback middleware, ASGI and WSGI.

ASGI: uvicorn (1 worker, uvloop + httptools) serving an async view; WSGI: gunicorn (1
gthread worker, 4 threads) serving a sync view. wrk ``-t1 -c32`` on 127.0.0.1; the two
variants alternate round by round (start rotated), each round's ratio uses the bare run
of the same round. Goal: >= 0.90x in both modes. ``BENCH_ROUNDS``/``BENCH_SECONDS`` override.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import harness

VARIANTS = ("bare", "feedback")
CONNECTIONS = 32
GOAL = 0.90


def _command(mode: str) -> list[str]:
    address = f"{harness.HOST}:{harness.PORT}"
    if mode == "asgi":
        return [sys.executable, "-m", "uvicorn", "--factory", "bench.apps.django_site:asgi",
                "--host", harness.HOST, "--port", str(harness.PORT), "--workers", "1",
                "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                "--log-level", "warning", "--lifespan", "off"]
    return [sys.executable, "-m", "gunicorn", "bench.apps.django_site:wsgi()", "-b", address,
            "-w", "1", "-k", "gthread", "--threads", "4", "--log-level", "warning"]


@contextmanager
def _server(mode: str, variant: str) -> Iterator[None]:
    env = {**os.environ, "PYTHONPATH": str(harness.ROOT),
           "DJANGO_SETTINGS_MODULE": "bench.apps.django_site",
           "BENCH_FEEDBACK": "1" if variant == "feedback" else "0"}
    log = Path(tempfile.gettempdir()) / "feedback-asgi-bench-django-server.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(_command(mode), cwd=harness.ROOT, env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{mode} server exited; see {log}")
            try:
                socket.create_connection((harness.HOST, harness.PORT), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{mode} server did not start; see {log}") from None
                time.sleep(0.1)
        yield
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # our own child, by PID
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _own_port() -> None:
    """A port of this benchmark's own (``BENCH_DJANGO_PORT``), so it never load-tests a
    server another benchmark left on the shared default port."""
    port = int(os.environ.get("BENCH_DJANGO_PORT", "8795"))
    harness.PORT, harness.URL = port, f"http://{harness.HOST}:{port}"
    try:
        socket.create_connection((harness.HOST, port), timeout=0.2).close()
    except OSError:
        return
    raise RuntimeError(f"port {port} is busy: set BENCH_DJANGO_PORT")


def main() -> dict[str, Any]:
    harness.ensure_wrk()
    _own_port()
    rounds, warm, seconds = harness.rounds_and_seconds(5, 5)
    figures: dict[str, Any] = {"rounds": rounds, "seconds": seconds,
                               "connections": CONNECTIONS, "goal": GOAL}
    lines = []
    for mode in ("asgi", "wsgi"):
        route = "/async" if mode == "asgi" else "/sync"
        print(f"-- {mode}: {route}", flush=True)

        def run(rnd: int, variant: str, mode: str = mode, route: str = route) -> Any:
            with _server(mode, variant):
                status, headers, _ = harness.request("GET", route)
                assert status == 200, status
                assert ("x-feedback-token" in headers) == (variant == "feedback"), headers
                if warm:
                    harness.wrk(route, CONNECTIONS, warm)
                yield {"endpoint": route, **harness.wrk(route, CONNECTIONS, seconds)}

        rows = harness.alternate(VARIANTS, rounds, run)
        bare = harness.median(r["rps"] for r in harness.pick(rows, variant="bare"))
        ours = harness.median(r["rps"] for r in harness.pick(rows, variant="feedback"))
        ratios = harness.per_round_ratios(rows, "feedback", "bare")
        ratio = harness.median(ratios)
        p99 = {v: harness.median(r["p99_ms"] for r in harness.pick(rows, variant=v))
               for v in VARIANTS}
        errors = sum(r["socket_errors"] + r["non2xx"] for r in rows)
        figures[mode] = {"bare_rps": bare, "feedback_rps": ours, "ratio_median": ratio,
                         "ratios": ratios, "p99_ms": p99, "errors": errors,
                         "meets_goal": ratio >= GOAL, "rows": rows}
        lines.append([mode, f"{bare:.0f}", f"{ours:.0f}", f"{ratio:.3f}",
                      f"{min(ratios):.3f}-{max(ratios):.3f}", f"{p99['bare']:.2f}",
                      f"{p99['feedback']:.2f}", str(errors)])
    print()
    print(harness.table(["mode", "bare req/s", "with middleware req/s", "ratio (median)",
                         "ratio range", "p99 bare ms", "p99 ours ms", "errors"], lines))
    return figures
