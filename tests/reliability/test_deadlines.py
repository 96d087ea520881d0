"""Deadlines when storage accepts connections and never answers, on the real thing.

One uvicorn on loopback serves a Starlette app under ``FeedbackMiddleware`` (its own route
``/hello`` and the feedback routes); PostgreSQL, MariaDB or Redis is reached through a
:class:`~tests.tcp_proxy.TcpProxy` that goes silent (accepts, never answers): from the
start (cold pool: the kit starts on lifespan against it) or after successful posts (warm
pool, whose open connections then swallow every byte). While it is silent:

* 64 concurrent posts each answer within ``connect_timeout_seconds`` + 1 s: 503 with
  ``Retry-After`` for a silent database, 201 for a silent Redis (the database answers);
* ``GET /feedback/health`` answers within 1 s, and the app's own route stays fast;

and once the proxy forwards again a post succeeds within 2 s, then every post does (no
connection the silence broke is handed out again).

The figures are printed; with ``FEEDBACK_DEADLINES_OUT=<path>`` they are also written there
as JSON (``python -m bench deadlines`` does that, into ``bench/results/deadlines.json``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.kit import FeedbackKit
from feedback_asgi.middleware import FeedbackMiddleware
from tests import services
from tests.asgi.harness import serve
from tests.tcp_proxy import TcpProxy

POSTS = 64
TIMEOUT = 1.0
"""``connect_timeout_seconds`` of every kit here."""
ANSWER_BUDGET = TIMEOUT + 1.0
HEALTH_BUDGET = 1.0
RECOVERY_BUDGET = 2.0
ROUTE_BUDGET = 0.5
STARTUP_BUDGET = 0.5
SECRET = "deadline-tests-secret-key-0123456789abcdef"
T = TypeVar("T")

FIGURES: dict[str, dict[str, Any]] = {}


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    if not FIGURES:
        return
    print("\nwhile storage was silent (seconds):")
    for name, figures in sorted(FIGURES.items()):
        print(f"  {name:18} {json.dumps(figures)}")
    out = os.environ.get("FEEDBACK_DEADLINES_OUT")
    if out:
        Path(out).write_text(json.dumps(FIGURES, indent=2, sort_keys=True) + "\n")


async def hello(request: Request) -> JSONResponse:
    return JSONResponse({"hello": "world"})


def app_for(kit: FeedbackKit) -> FeedbackMiddleware:
    return FeedbackMiddleware(Starlette(routes=[Route("/hello", hello)]), kit=kit)


async def timed(call: Awaitable[T]) -> tuple[float, T]:
    """Seconds ``call`` took, and its result."""
    started = time.monotonic()
    result = await call
    return time.monotonic() - started, result


@dataclass
class Outage:
    """What goes silent, and how a kit reaches it through the proxy."""

    target: tuple[str, int]
    config: Callable[[int], FeedbackConfig]
    """The kit's settings, given the proxy's port."""
    status: int
    """What posts answer while it is silent."""
    captured: bool
    """Rate responses the app served (their exchanges are looked up), not minted traces."""


@dataclass
class Site:
    """The app under uvicorn, its kit, and a client."""

    url: str
    kit: FeedbackKit
    http: httpx.AsyncClient
    captured: bool
    minted: int = 0
    route_seconds: list[float] = field(default_factory=list)

    async def token(self) -> tuple[str, str]:
        """A trace and its token: of a response the app served, or minted."""
        if self.captured:
            response = await self.http.get(f"{self.url}/hello")
            assert response.status_code == 200
            return response.headers["x-trace-id"], response.headers["x-feedback-token"]
        self.minted += 1
        trace = f"deadline-{self.minted}"
        return trace, self.kit.signer.sign(trace, "")

    async def post(self, trace: str, token: str) -> httpx.Response:
        return await self.http.post(
            f"{self.url}/feedback",
            json={"trace_id": trace, "type": "rating", "value": 4},
            headers={"X-Feedback-Token": token},
        )

    async def post_new(self) -> httpx.Response:
        return await self.post(*await self.token())

    async def watch_route(self, stop: asyncio.Event) -> None:
        """Time the app's own route every 50 ms until ``stop`` is set."""
        while not stop.is_set():
            seconds, response = await timed(self.http.get(f"{self.url}/hello"))
            assert response.status_code == 200
            self.route_seconds.append(seconds)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)


@contextlib.asynccontextmanager
async def site(outage: Outage, proxy: TcpProxy, *, lifespan: str = "on") -> AsyncIterator[Site]:
    kit = FeedbackKit(outage.config(proxy.port))
    limits = httpx.Limits(max_connections=POSTS * 2, max_keepalive_connections=POSTS * 2)
    async with serve(app_for(kit), lifespan=lifespan) as url, httpx.AsyncClient(
        timeout=15, limits=limits
    ) as http:
        yield Site(url, kit, http, outage.captured)


def _median_max(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "max": round(max(values), 3)}


async def run_outage(name: str, outage: Outage, *, warm: bool, rated_before: bool = False) -> None:
    """Silence the proxy (before the app starts, or after it served posts), measure, restore.

    ``rated_before``: the 64 posts rate responses served (and their exchanges stored)
    just before the silence, rather than during it. The figures go to ``FIGURES[name]``.
    """
    proxy = await TcpProxy(*outage.target).start()
    try:
        if not warm:
            proxy.silence()
        async with site(outage, proxy) as app:
            if warm:
                # several connections in the pool: posts, then concurrent pings
                assert all(r.status_code == 201 for r in await asyncio.gather(
                    *(app.post_new() for _ in range(8))))
                await asyncio.gather(*(app.kit.store.ping() for _ in range(8)))
            tokens = [await app.token() for _ in range(POSTS)] if rated_before else []
            if rated_before:
                assert await app.kit.writer.flush(max_wait=5)
            proxy.silence()
            tokens = tokens or [await app.token() for _ in range(POSTS)]
            stop = asyncio.Event()
            watcher = asyncio.create_task(app.watch_route(stop))
            try:
                answers = await asyncio.gather(*(timed(app.post(*token)) for token in tokens))
                health_seconds, health = await timed(app.http.get(f"{app.url}/feedback/health"))
            finally:
                stop.set()
                await watcher

            proxy.restore()
            restored = time.monotonic()
            refused = 0
            while (recovered := await app.post_new()).status_code != 201:
                refused += 1
                assert time.monotonic() - restored < 5, recovered.text
                await asyncio.sleep(0.02)
            recovery = time.monotonic() - restored
            after = await asyncio.gather(*(app.post_new() for _ in range(32)))
            later = await asyncio.gather(*(app.post_new() for _ in range(32)))
            health_after = await app.http.get(f"{app.url}/feedback/health")
    finally:
        await proxy.close()

    seconds = [s for s, _ in answers]
    figures = FIGURES[name] = {
        "posts": _median_max(seconds),
        "statuses": sorted({r.status_code for _, r in answers}),
        "health": round(health_seconds, 3),
        "health_status": health.status_code,
        "route_during": _median_max(app.route_seconds),
        "first_success_after_restore": round(recovery, 3),
        "refused_after_restore": refused,
    }
    assert {r.status_code for _, r in answers} == {outage.status}, [r.text for _, r in answers[:3]]
    if outage.status == 503:
        assert all(int(r.headers["retry-after"]) > 0 for _, r in answers)
    assert max(seconds) <= ANSWER_BUDGET, figures
    assert health_seconds <= HEALTH_BUDGET, figures
    assert health.status_code == 503, health.text
    assert max(app.route_seconds) <= ROUTE_BUDGET, figures
    assert recovery <= RECOVERY_BUDGET, figures
    assert [r.status_code for r in [*after, *later]] == [201] * 64, [r.text for r in after]
    assert health_after.status_code == 200, health_after.text


# the outages


def _host_port(url: str) -> tuple[str, int]:
    parsed = make_url(url)
    assert parsed.host is not None
    assert parsed.port is not None
    return parsed.host, parsed.port


def database_outage(url: str) -> Outage:
    parsed = make_url(url)

    def config(port: int) -> FeedbackConfig:
        return FeedbackConfig(
            database_url=parsed.set(port=port).render_as_string(hide_password=False),
            secret_key=SECRET,
            connect_timeout_seconds=TIMEOUT,
        )

    return Outage(_host_port(url), config, status=503, captured=False)


def redis_outage(database_url: str, redis_prefix: str) -> Outage:
    def config(port: int) -> FeedbackConfig:
        return FeedbackConfig(
            database_url=database_url,
            redis_url=f"redis://127.0.0.1:{port}/0",
            redis_key_prefix=redis_prefix,
            secret_key=SECRET,
            connect_timeout_seconds=TIMEOUT,
            rate_limit_per_minute=100_000,
            rate_limit_burst=100_000,
        )

    return Outage((services.REDIS_HOST, services.REDIS_PORT), config, status=201, captured=True)


@pytest.fixture(params=["cold", "warm"])
def pool(request: pytest.FixtureRequest) -> str:
    param: str = request.param
    return param


@pytest.mark.postgres
async def test_silent_postgres(postgres_url: str, pool: str) -> None:
    await run_outage(f"postgres {pool}", database_outage(postgres_url), warm=pool == "warm")


@pytest.mark.mariadb
async def test_silent_mariadb(mysql_url: str, pool: str) -> None:
    await run_outage(f"mariadb {pool}", database_outage(mysql_url), warm=pool == "warm")


@pytest.mark.redis
async def test_silent_redis(postgres_url: str, redis_prefix: str, pool: str) -> None:
    outage = redis_outage(postgres_url, redis_prefix)
    await run_outage(f"redis {pool}", outage, warm=pool == "warm")


@pytest.mark.redis
async def test_silent_redis_rating_responses_served_just_before(
    postgres_url: str, redis_prefix: str
) -> None:
    outage = redis_outage(postgres_url, redis_prefix)
    await run_outage("redis warm, rated before", outage, warm=True, rated_before=True)


@pytest.mark.postgres
async def test_a_kit_starting_against_a_silent_database_serves_the_app_at_once(
    postgres_url: str,
) -> None:
    outage = database_outage(postgres_url)
    proxy = await TcpProxy(*outage.target).start()
    proxy.silence()
    try:
        started = time.monotonic()
        async with site(outage, proxy) as app:
            first = await app.http.get(f"{app.url}/hello")
            serving = time.monotonic() - started
            assert first.status_code == 200
            assert not app.kit.started
        FIGURES["startup silent"] = {"first_route_answer": round(serving, 3)}
        assert serving <= STARTUP_BUDGET
    finally:
        await proxy.close()


async def test_health_answers_within_a_second_with_the_default_connect_timeout() -> None:
    proxy = await TcpProxy("127.0.0.1", 9).start()
    proxy.silence()  # a database and a Redis that accept connections and never answer
    kit = FeedbackKit(FeedbackConfig(
        database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{proxy.port}/nowhere",
        redis_url=f"redis://127.0.0.1:{proxy.port}/0",
        secret_key=SECRET,
    ))
    assert kit.config.connect_timeout_seconds == 2.0
    try:
        started = time.monotonic()
        await kit.startup()
        startup = time.monotonic() - started
        first = await timed(kit.health())
        again = await timed(kit.health())
    finally:
        await kit.shutdown()
        await proxy.close()
    assert startup <= STARTUP_BUDGET
    assert not kit.started
    for seconds, report in (first, again):
        assert seconds <= HEALTH_BUDGET
        assert not report.healthy
        assert not report["database"]["reachable"]
        assert not report["redis"]["reachable"]
