"""Faults injected while the load runs, each when a share of the posts is acknowledged.

* :class:`PostgresCut`: the proxy between the app and PostgreSQL drops every connection and
  refuses new ones for ``hold`` seconds, then lets them through again.
* :class:`RedisCut`: the same between the app and Redis.
* :class:`WorkerKill`: SIGKILL to the worker that acknowledged the latest post.

Each records when it started and ended and what it did; :mod:`bench.soak.verify` judges
whether the app survived it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from bench.soak.load import LoadClient
from bench.soak.services import AppServer, ProxyProcess


@dataclass
class FaultReport:
    """What one fault did, and when (``time.monotonic()`` seconds)."""

    name: str
    started: float
    ended: float
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Targets:
    """What faults act on."""

    server: AppServer
    postgres: ProxyProcess
    redis: ProxyProcess
    load: LoadClient


class Fault(Protocol):
    """A fault: ``at`` is the share of posts acknowledged when it fires."""

    name: str
    at: float

    async def inject(self, targets: Targets) -> FaultReport:
        """Do it; return what was done."""
        ...


@dataclass
class PostgresCut:
    """PostgreSQL unreachable for ``hold`` seconds."""

    at: float = 0.3
    hold: float = 2.0
    name: str = "postgres cut"

    async def inject(self, targets: Targets) -> FaultReport:
        started = time.monotonic()
        await asyncio.to_thread(targets.postgres.cut)
        await asyncio.sleep(self.hold)
        await asyncio.to_thread(targets.postgres.restore)
        return FaultReport(self.name, started, time.monotonic(), {"hold_seconds": self.hold})


@dataclass
class RedisCut:
    """Redis unreachable for ``hold`` seconds."""

    at: float = 0.5
    hold: float = 2.0
    name: str = "redis cut"

    async def inject(self, targets: Targets) -> FaultReport:
        started = time.monotonic()
        await asyncio.to_thread(targets.redis.cut)
        await asyncio.sleep(self.hold)
        await asyncio.to_thread(targets.redis.restore)
        return FaultReport(self.name, started, time.monotonic(), {"hold_seconds": self.hold})


@dataclass
class WorkerKill:
    """SIGKILL the worker that acknowledged the latest post, then wait for its replacement."""

    at: float = 0.7
    name: str = "worker SIGKILL"

    async def inject(self, targets: Targets) -> FaultReport:
        workers_before = targets.server.worker_pids()
        acked = [post for post in targets.load.result.posts if post.worker in workers_before]
        victim = acked[-1].worker if acked else min(workers_before)
        assert victim is not None
        started = time.monotonic()
        targets.server.kill_worker(victim)
        replaced = False
        for _ in range(200):  # uvicorn's supervisor starts a new worker
            await asyncio.sleep(0.05)
            now = targets.server.worker_pids()
            if victim not in now and len(now) >= len(workers_before):
                replaced = True
                break
        return FaultReport(self.name, started, time.monotonic(),
                           {"pid": victim, "replaced": replaced})


async def run_faults(faults: list[Fault], targets: Targets, total_posts: int,
                     done: asyncio.Event) -> list[FaultReport]:
    """Fire each fault, in order, once its share of posts is acknowledged."""
    reports: list[FaultReport] = []
    for fault in sorted(faults, key=lambda f: f.at):
        while not done.is_set():
            if targets.load.acked_count >= fault.at * total_posts:
                break
            await asyncio.sleep(0.05)
        if done.is_set():
            break
        reports.append(await fault.inject(targets))
    return reports
