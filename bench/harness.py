"""Load-test plumbing shared by the HTTP benchmarks: one uvicorn per variant, wrk against it.

Adapted from the harness in ``../shared/bench-anchors/`` (``bench.py``): one server process
(1 worker, uvloop + httptools, no access log) per variant run, ``wrk -t1`` on 127.0.0.1,
variants alternated round-robin with the start rotated each round, figures reduced to
medians and to ratios against a baseline measured in the same round. Everything is bounded:
wrk runs for fixed seconds, servers are stopped by their own PID.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LUA = Path(__file__).resolve().parent / "lua"
HOST = "127.0.0.1"
PORT = int(os.environ.get("BENCH_PORT", "8791"))
URL = f"http://{HOST}:{PORT}"


def ensure_wrk() -> None:
    """Install wrk with apt when it is missing (as the anchors' run.sh does)."""
    if shutil.which("wrk"):
        return
    print("wrk not found: installing it with apt-get", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "wrk"]
    if subprocess.run(install, env=env, capture_output=True, timeout=600).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=600)
        subprocess.run(install, env=env, check=True, capture_output=True, timeout=600)


def rounds_and_seconds(default_rounds: int, default_seconds: int) -> tuple[int, int, int]:
    """``(rounds, warm-up seconds, measured seconds)``; ``BENCH_ROUNDS``/``BENCH_SECONDS`` override."""
    rounds = int(os.environ.get("BENCH_ROUNDS", default_rounds))
    seconds = int(os.environ.get("BENCH_SECONDS", default_seconds))
    warm = int(os.environ.get("BENCH_WARM", 2))
    return rounds, warm, seconds


class Server:
    """``python -m uvicorn MODULE:app`` in a child process, as ``uvicorn[standard]`` runs it."""

    def __init__(self, app: str, env: Mapping[str, str], log: Path) -> None:
        self.app = app
        self.env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", self.app, "--host", HOST, "--port", str(PORT),
                 "--workers", "1", "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                 "--log-level", "warning"],
                cwd=ROOT, env=self.env, stdout=log, stderr=log,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server {self.app} exited; see {self.log}")
            try:
                socket.create_connection((HOST, PORT), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"server {self.app} did not start; see {self.log}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __exit__(self, *exc: object) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)  # our own child, by PID: lets lifespan shutdown run
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(path: str, conns: int, seconds: int, script: str | None = None,
        args: Sequence[str] = ()) -> dict[str, Any]:
    """One wrk run; req/s, request count, p50/p99 and error counts."""
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    if script is not None:
        cmd += ["-s", str(LUA / script)]
    cmd.append(URL + path)
    if args:
        cmd += ["--", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if found is None:
        raise RuntimeError(f"wrk gave no result:\n{out}")
    pct = {p: _ms(v, u) for p, v, u in
           re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    requests = re.search(r"(\d+) requests in", out)
    statuses = {int(k): int(v) for k, v in re.findall(r"^status (\d+) (\d+)$", out, re.M)}
    return {
        "rps": float(found.group(1)),
        "requests": int(requests.group(1)) if requests else 0,
        "p50_ms": pct.get("50", 0.0),
        "p99_ms": pct.get("99", 0.0),
        "socket_errors": sum(map(int, errors.groups())) if errors else 0,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "statuses": statuses,
    }


def request(method: str, path: str, body: bytes | None = None,
            headers: Mapping[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One plain HTTP request to the server (a probe before the load)."""
    req = urllib.request.Request(URL + path, data=body, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def alternate(variants: Sequence[str], rounds: int,
              run: Callable[[int, str], Iterable[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Run every variant once per round, the starting variant rotated each round."""
    rows: list[dict[str, Any]] = []
    for rnd in range(rounds):
        shift = rnd % len(variants)
        for variant in [*variants[shift:], *variants[:shift]]:
            started = time.time()
            for row in run(rnd + 1, variant):
                row = {"round": rnd + 1, "variant": variant, **row}
                rows.append(row)
                print(f"  round {rnd + 1} {variant:<16} {row['endpoint']:<14} {row['rps']:9.1f} req/s"
                      f"  p99 {row['p99_ms']:7.2f} ms  non2xx {row['non2xx']}"
                      f" errs {row['socket_errors']}", flush=True)
            print(f"    ({time.time() - started:.1f}s)", flush=True)
    return rows


def pick(rows: Iterable[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    """The rows whose fields equal ``match``."""
    return [r for r in rows if all(r.get(k) == v for k, v in match.items())]


def median(values: Iterable[float]) -> float:
    """The median (0.0 for no values)."""
    data = list(values)
    return statistics.median(data) if data else 0.0


def spread(values: Sequence[float]) -> float:
    """(max - min) / median of ``values``."""
    mid = median(values)
    return (max(values) - min(values)) / mid if mid else 0.0


def per_round_ratios(rows: list[dict[str, Any]], variant: str, base: str,
                     key: str = "rps", **match: Any) -> list[float]:
    """``variant / base`` of ``key``, each pair measured in the same round, sorted."""
    mine = pick(rows, variant=variant, **match)
    ref = {r["round"]: r[key] for r in pick(rows, variant=base, **match)}
    return sorted(r[key] / ref[r["round"]] for r in mine if ref.get(r["round"]))


def table(header: Sequence[str], body: Iterable[Sequence[str]], right: int = 1) -> str:
    """A Markdown table; columns from ``right`` on are right-aligned."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i < right else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)
