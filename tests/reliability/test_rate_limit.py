"""Rate limit on POST /feedback: 429 + Retry-After past the limit, per client, shared through
Redis by separate kits (as by worker processes), local fallback when Redis is down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.core.records import Exchange
from feedback_asgi.kit import FeedbackKit
from feedback_asgi.storage.memory import MemoryFeedbackStore
from feedback_asgi.web.rate_limit import LocalRateLimiter, limiter_for
from tests.endpoint.apps import SURFACES, build, error_of
from tests.tcp_proxy import TcpProxy

SECRET = "rate-limit-tests-secret-key-0123456789abcdef"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_local_bucket_burst_refill_and_retry_after() -> None:
    clock = Clock()
    limiter = LocalRateLimiter(per_minute=6, burst=2, clock=clock)  # one token per 10 s
    assert [limiter.hit("a").allowed for _ in range(3)] == [True, True, False]
    denied = limiter.hit("a")
    assert not denied.allowed
    assert denied.retry_after == pytest.approx(10.0)
    assert limiter.hit("b").allowed  # another client has its own bucket
    clock.now += 5
    assert limiter.hit("a").retry_after == pytest.approx(5.0)
    clock.now += 5
    assert limiter.hit("a").allowed
    assert not limiter.hit("a").allowed
    clock.now += 3600  # refills up to the burst, not beyond
    assert [limiter.hit("a").allowed for _ in range(3)] == [True, True, False]


def test_local_buckets_are_bounded() -> None:
    clock = Clock()
    limiter = LocalRateLimiter(per_minute=1, max_clients=100, clock=clock)
    for client in range(1000):
        assert limiter.hit(f"c{client}").allowed
    assert len(limiter._buckets) == 100
    assert not limiter.hit("c999").allowed  # recent clients are still remembered


def _client(app: Any, host: str = "10.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 40_000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def _post(http: httpx.AsyncClient, path: str, kit: FeedbackKit, trace: str,
                subject: str | None = "alice") -> httpx.Response:
    headers = {} if subject is None else {"X-Feedback-Token": kit.signer.sign(trace, subject)}
    body: dict[str, Any] = {"trace_id": trace, "type": "thumbs", "value": "up"}
    if subject is None:
        body["token"] = kit.signer.sign(trace, "")
    return await http.post(path, json=body, headers=headers)


async def _stored(kit: FeedbackKit) -> int:
    assert isinstance(kit.store, MemoryFeedbackStore)
    return len([item async for item in kit.store.iter_items(include_history=True)])


@pytest.mark.parametrize("surface_name", SURFACES)
async def test_past_the_limit_429_with_retry_after_per_subject_and_address(
    surface_name: str,
) -> None:
    kit = FeedbackKit.for_testing(rate_limit_per_minute=2)
    surface = build(surface_name, kit)
    async with _client(surface.app, "10.0.0.1") as http:
        answers = [await _post(http, surface.submit, kit, f"t{i}") for i in range(3)]
        bob_here = await _post(http, surface.submit, kit, "t-bob", subject="bob")
    async with _client(surface.app, "10.0.0.2") as elsewhere:
        alice_elsewhere = await _post(elsewhere, surface.submit, kit, "t-a2")
        carol = await _post(elsewhere, surface.submit, kit, "t-carol", subject="carol")
    assert [a.status_code for a in answers] == [201, 201, 429]
    refused = answers[2]
    assert error_of(refused)["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 30
    assert bob_here.status_code == 429  # another subject, the same address: both count
    assert alice_elsewhere.status_code == 429  # the same subject on another address
    assert carol.status_code == 201
    assert await _stored(kit) == 3


async def test_rotating_subjects_stays_within_the_address_limit() -> None:
    # an unsigned session cookie lets a client mint subjects: 20 of them, one address
    kit = FeedbackKit.for_testing(rate_limit_per_minute=5, session_cookie="sid")
    surface = build("endpoint", kit)
    async with _client(surface.app, "10.0.0.9") as http:
        answers = [
            await _post(http, "/feedback", kit, "t-victim", subject=f"session:forged-{n}")
            for n in range(20)
        ]
    assert [a.status_code for a in answers].count(201) == 5
    assert {a.status_code for a in answers[5:]} == {429}
    assert isinstance(kit.store, MemoryFeedbackStore)
    assert len(await kit.store.find_by_trace("t-victim")) == 5


async def test_without_a_subject_the_client_address_is_the_key() -> None:
    kit = FeedbackKit.for_testing(rate_limit_per_minute=1)
    surface = build("endpoint", kit)
    async with _client(surface.app, "10.0.0.1") as first, _client(surface.app, "10.0.0.2") as other:
        a1 = await _post(first, "/feedback", kit, "t1", subject=None)
        a2 = await _post(first, "/feedback", kit, "t2", subject=None)
        b1 = await _post(other, "/feedback", kit, "t3", subject=None)
    assert (a1.status_code, a2.status_code, b1.status_code) == (201, 429, 201)
    # a forged token header does not buy a fresh bucket: it counts against the address
    async with _client(surface.app, "10.0.0.2") as other:
        forged = await other.post("/feedback", json={"trace_id": "t4", "type": "thumbs",
                                                     "value": 1},
                                  headers={"X-Feedback-Token": "v2.12345678.1.t4.Ym9i.forged"})
    assert forged.status_code == 429
    assert await _stored(kit) == 2


async def test_no_limit_by_default() -> None:
    kit = FeedbackKit.for_testing()
    assert limiter_for(kit) is None
    surface = build("endpoint", kit)
    async with _client(surface.app) as http:
        answers = [await _post(http, "/feedback", kit, f"t{i}") for i in range(30)]
    assert {a.status_code for a in answers} == {201}


def _redis_kit(redis_url: str, prefix: str, **settings: Any) -> FeedbackKit:
    config = FeedbackConfig(database_url="memory://", redis_url=redis_url,
                            redis_key_prefix=prefix, secret_key=SECRET,
                            connect_timeout_seconds=0.5, **settings)
    return FeedbackKit(config)


@pytest.fixture
async def two_workers(redis_url: str, redis_prefix: str) -> AsyncIterator[list[FeedbackKit]]:
    kits = [_redis_kit(redis_url, redis_prefix, rate_limit_per_minute=60, rate_limit_burst=4)
            for _ in range(2)]
    try:
        yield kits
    finally:
        for kit in kits:
            await kit.shutdown()


@pytest.mark.redis
async def test_redis_shares_the_limit_across_workers(two_workers: list[FeedbackKit]) -> None:
    a, b = two_workers
    for i in range(6):  # captured exchanges, as the workers would have stored them
        await a.exchanges.put(Exchange(trace_id=f"t{i}"))
    async with _client(build("endpoint", a).app) as http_a, \
            _client(build("endpoint", b).app) as http_b:
        answers = [await _post(http, "/feedback", a, f"t{i}")
                   for i, http in enumerate([http_a, http_b] * 3)]
    # a burst of 4 for the one subject, whichever worker answers
    assert [r.status_code for r in answers] == [201, 201, 201, 201, 429, 429]
    assert int(answers[-1].headers["retry-after"]) == 1  # 60 a minute: one a second
    limiter = limiter_for(a)
    assert limiter is not None
    assert limiter.remote is not None
    assert limiter.remote.redis_errors == 0  # type: ignore[attr-defined]


@pytest.mark.redis
async def test_redis_down_falls_back_to_local_limits(redis_url: str, redis_prefix: str) -> None:
    proxy = await TcpProxy("127.0.0.1", 6379).start()
    kit = _redis_kit(f"redis://127.0.0.1:{proxy.port}/0", redis_prefix,
                     rate_limit_per_minute=60, rate_limit_burst=3)
    try:
        async with _client(build("endpoint", kit).app) as http:
            shared = await _post(http, "/feedback", kit, "t0")
            proxy.cut()
            during = [await _post(http, "/feedback", kit, f"t{i}") for i in range(1, 5)]
    finally:
        await kit.shutdown()
        await proxy.close()
    assert shared.status_code == 201
    # no error because of Redis: the local bucket (burst 3, fresh) takes over
    assert [r.status_code for r in during] == [201, 201, 201, 429]
    limiter = limiter_for(kit)
    assert limiter is not None
    assert limiter.remote is not None
    assert limiter.remote.redis_errors >= 1  # type: ignore[attr-defined]
