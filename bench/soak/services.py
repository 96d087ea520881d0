"""What a soak run stands on: a fresh PostgreSQL database and Redis prefix, TCP proxies the
driver can cut, and the app under uvicorn with several workers, in a child process."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from multiprocessing.connection import Connection
from pathlib import Path

from tests.tcp_proxy import TcpProxy

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
PG_PORT, REDIS_PORT = 5432, 6379
SECRET = "soak-run-secret-key-0123456789abcdefghijkl"
APP = "bench.apps.soak_app:app"


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def unique(prefix: str) -> str:
    """A name no other run uses."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


async def create_database() -> str:
    """A fresh PostgreSQL database; returns its name."""
    import asyncpg

    name = unique("fa_soak")
    conn = await asyncpg.connect(host=HOST, port=PG_PORT, user="postgres", database="postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def drop_database(name: str) -> None:
    """Drop a database made by :func:`create_database`."""
    import asyncpg

    conn = await asyncpg.connect(host=HOST, port=PG_PORT, user="postgres", database="postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def delete_redis_prefix(prefix: str) -> None:
    """Delete every Redis key under ``prefix``."""
    import redis.asyncio as redis

    client = redis.Redis.from_url(f"redis://{HOST}:{REDIS_PORT}/0")
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        for start in range(0, len(keys), 1000):
            await client.delete(*keys[start : start + 1000])
    finally:
        await client.aclose()


def _serve_proxy(target_port: int, conn: Connection) -> None:
    """The body of a :class:`ProxyProcess`: a :class:`TcpProxy` driven by commands on ``conn``."""

    async def main() -> None:
        proxy = await TcpProxy(HOST, target_port).start()
        conn.send(proxy.port)
        loop = asyncio.get_running_loop()
        while True:
            command = await loop.run_in_executor(None, conn.recv)
            if command == "close":
                await proxy.close()
                conn.send("done")
                return
            getattr(proxy, command)()
            conn.send("done")

    asyncio.run(main())


class ProxyProcess:
    """A :class:`TcpProxy` in a process of its own, so the load generator (its event loop and
    its GIL) never delays the bytes it forwards.

    :meth:`cut` and :meth:`restore` are synchronous; each returns once the proxy acted.
    """

    def __init__(self, target_port: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve_proxy, args=(target_port, child), daemon=True
        )
        self.port = 0

    def start(self) -> ProxyProcess:
        """Listen on a free loopback port (:attr:`port`)."""
        self._process.start()
        if not self._conn.poll(30):
            raise RuntimeError("the proxy process did not start")
        self.port = int(self._conn.recv())
        return self

    def _run(self, command: str) -> None:
        self._conn.send(command)
        if not self._conn.poll(10):
            raise TimeoutError(f"the proxy process did not {command}")
        self._conn.recv()

    def cut(self) -> None:
        """Drop every connection through the proxy and refuse new ones."""
        self._run("cut")

    def restore(self) -> None:
        """Let connections through again."""
        self._run("restore")

    def close(self) -> None:
        """Stop the proxy and its process."""
        with contextlib.suppress(Exception):
            self._run("close")
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)


class AppServer:
    """``uvicorn APP --workers N`` on a free loopback port, in its own process group."""

    def __init__(self, env: dict[str, str], workers: int, log: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        self.workers = workers
        self.log = log
        self.env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
        self.proc: subprocess.Popen[bytes] | None = None
        self.exit_seconds: float | None = None
        """Seconds from SIGTERM to exit, once :meth:`terminate` ran."""

    def start(self, timeout: float = 60.0) -> AppServer:
        """Start uvicorn and wait until it accepts connections."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", APP, "--host", HOST, "--port", str(self.port),
                 "--workers", str(self.workers), "--no-access-log", "--log-level", "warning",
                 "--timeout-graceful-shutdown", "10"],
                cwd=ROOT, env=self.env, stdout=log, stderr=log, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {self.proc.returncode}; see {self.log}")
            seen = self._answering_workers()
            if len(seen) >= self.workers:
                return self
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"uvicorn's workers did not all answer within {timeout} s; see {self.log}")

    def _answering_workers(self) -> set[str]:
        """Workers that answered ``GET /`` (the app's page), asked a few times."""
        seen: set[str] = set()
        for _ in range(4 * self.workers):
            try:
                with urllib.request.urlopen(self.base_url + "/", timeout=2) as response:
                    if response.status == 200:
                        seen.add(response.headers.get("x-worker", ""))
            except OSError:
                return seen
        return seen

    @property
    def pid(self) -> int:
        """The supervisor's process id."""
        assert self.proc is not None
        return self.proc.pid

    def worker_pids(self) -> set[int]:
        """The supervisor's child processes (its workers), from ``/proc``."""
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        try:
            return {int(pid) for pid in path.read_text().split()}
        except OSError:
            return set()

    def kill_worker(self, pid: int) -> None:
        """SIGKILL one worker of this server (refuses any other process)."""
        if pid not in self.worker_pids():
            raise ValueError(f"{pid} is not a worker of uvicorn {self.pid}")
        os.kill(pid, signal.SIGKILL)

    def terminate(self, timeout: float = 30.0) -> float:
        """SIGTERM the supervisor (graceful: lifespan shutdown runs) and wait for it to exit.

        Returns the seconds it took; past ``timeout`` the group is killed and
        :class:`TimeoutError` raised.
        """
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise TimeoutError(f"uvicorn did not exit within {timeout} s of SIGTERM") from None
        self.exit_seconds = time.monotonic() - started
        return self.exit_seconds

    def kill(self) -> None:
        """SIGKILL the process group this server started (its supervisor and workers)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)

    @property
    def running(self) -> bool:
        """Whether the supervisor is still alive."""
        return self.proc is not None and self.proc.poll() is None
