"""Sign-out revokes the cookie on the server, and the sign-in limit is per client address:
in one process without Redis, across workers (two kits, one Redis prefix) with it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.core.records import FeedbackItem
from feedback_asgi.dashboard import session
from feedback_asgi.dashboard.revocations import CLOCK_SKEW_SECONDS
from feedback_asgi.dashboard.routes import LOGIN_ATTEMPTS_PER_MINUTE
from feedback_asgi.kit import FeedbackKit
from feedback_asgi.web.endpoint import create_feedback_endpoint
from tests.endpoint.apps import SURFACES, build, error_of
from tests.tcp_proxy import TcpProxy

ADMIN_TOKEN = "sign-out-admin-token-0123456789"
SECRET = "sign-out-tests-secret-key-0123456789abcdef"
SAME_ORIGIN = {"Origin": "http://testserver"}
HTML = {"Accept": "text/html"}


def _client(app: Any, address: str = "203.0.113.7") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def _jar(cookie: str) -> dict[str, str]:
    return {"Cookie": f"{session.COOKIE_NAME}={cookie}"}


async def _sign_in(http: httpx.AsyncClient, token: str = ADMIN_TOKEN) -> httpx.Response:
    response = await http.post("/feedback/dashboard/login", data={"token": token},
                               headers=SAME_ORIGIN)
    http.cookies.clear()  # every request below says which cookie it sends
    return response


def _cookie_of(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    raw = response.headers["set-cookie"]
    name, _, rest = raw.partition("=")
    assert name == session.COOKIE_NAME
    return rest.partition(";")[0]


async def _sign_out(http: httpx.AsyncClient, cookie: str) -> httpx.Response:
    return await http.post("/feedback/dashboard/logout", headers={**SAME_ORIGIN, **_jar(cookie)})


async def _signed_in(http: httpx.AsyncClient, cookie: str) -> bool:
    stats = await http.get("/feedback/stats", headers=_jar(cookie))
    page = await http.get("/feedback/dashboard", headers={**HTML, **_jar(cookie)})
    assert (stats.status_code == 200) == (page.status_code == 200), (stats, page)
    return stats.status_code == 200


@pytest.mark.parametrize("surface_name", SURFACES)
async def test_without_redis_sign_out_revokes_the_cookie_in_this_process(
    surface_name: str,
) -> None:
    kit = FeedbackKit.for_testing(admin_token=ADMIN_TOKEN)
    async with _client(build(surface_name, kit).app) as http:
        cookie = _cookie_of(await _sign_in(http))
        other = _cookie_of(await _sign_in(http))  # a second browser, still signed in
        assert await _signed_in(http, cookie)
        out = await _sign_out(http, cookie)
        assert out.status_code == 303
        assert out.headers["set-cookie"].startswith(f"{session.COOKIE_NAME}=;")
        assert not await _signed_in(http, cookie)
        assert await _signed_in(http, other)
        # the sign-in page shows the form to the signed-out cookie (no redirect loop)
        login = await http.get("/feedback/dashboard/login", headers={**HTML, **_jar(cookie)})
        assert login.status_code == 200
        assert 'name="token"' in login.text
        # a write with the signed-out cookie is refused too
        item = FeedbackItem("thumbs", 1, {"trace_id": "t-1"})
        assert (await kit.store.save(item)).is_ok()
        edit = await http.delete(f"/feedback/{item.id}", headers={**SAME_ORIGIN, **_jar(cookie)})
        assert edit.status_code == 401
        assert (await http.delete(f"/feedback/{item.id}",
                                  headers={**SAME_ORIGIN, **_jar(other)})).status_code == 204
    assert session.verify_cookie(kit.config, cookie)  # the signature alone still verifies
    assert not await session.cookie_valid(kit, cookie)


def _worker(redis_url: str, prefix: str) -> FeedbackKit:
    return FeedbackKit(FeedbackConfig(database_url="memory://", redis_url=redis_url,
                                      redis_key_prefix=prefix, secret_key=SECRET,
                                      admin_token=ADMIN_TOKEN, connect_timeout_seconds=0.5))


@pytest.fixture
async def workers(redis_url: str, redis_prefix: str) -> AsyncIterator[list[FeedbackKit]]:
    """Two worker processes' kits: one Redis, one key prefix, one secret."""
    kits = [_worker(redis_url, redis_prefix) for _ in range(2)]
    try:
        yield kits
    finally:
        for kit in kits:
            await kit.shutdown()


@pytest.mark.redis
async def test_a_cookie_signed_out_on_one_worker_is_refused_on_the_other(
    workers: list[FeedbackKit], redis_url: str, redis_prefix: str
) -> None:
    a, b = workers
    async with _client(create_feedback_endpoint(a)) as http_a, \
            _client(create_feedback_endpoint(b)) as http_b:
        cookie = _cookie_of(await _sign_in(http_a))
        assert await _signed_in(http_b, cookie)
        assert (await _sign_out(http_a, cookie)).status_code == 303
        assert not await _signed_in(http_b, cookie)
        assert not await _signed_in(http_a, cookie)
        # a fresh sign-in on the other worker is not affected
        fresh = _cookie_of(await _sign_in(http_b))
        assert await _signed_in(http_a, fresh)
    # the record expires with the cookie (plus the margin for clock skew), not before
    expires = int(cookie.split(".")[1])
    client = aioredis.Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{redis_prefix}dashboard:revoked:*")]
        assert len(keys) == 1
        ttl = await client.ttl(keys[0])
    finally:
        await client.aclose()
    assert abs((time.time() + ttl) - (expires + CLOCK_SKEW_SECONDS)) <= 5


@pytest.mark.redis
async def test_the_sign_in_limit_holds_across_workers_per_client_address(
    workers: list[FeedbackKit],
) -> None:
    a, b = workers
    apps = [create_feedback_endpoint(a), create_feedback_endpoint(b)]
    async with _client(apps[0]) as http_a, _client(apps[1]) as http_b, \
            _client(apps[1], address="198.51.100.9") as elsewhere:
        answers = [await _sign_in(http, "wrong-token")
                   for http in [http_a, http_b] * (LOGIN_ATTEMPTS_PER_MINUTE // 2)]
        limited = await _sign_in(http_a)  # the 11th, even with the right token
        other_address = await _sign_in(elsewhere)
    assert [answer.status_code for answer in answers] == [401] * LOGIN_ATTEMPTS_PER_MINUTE
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert "set-cookie" not in limited.headers
    assert other_address.status_code == 303


@pytest.mark.redis
async def test_redis_down_fails_closed_and_a_sign_out_is_not_half_done(
    redis_prefix: str,
) -> None:
    proxy = await TcpProxy("127.0.0.1", 6379).start()
    kit = _worker(f"redis://127.0.0.1:{proxy.port}/0", redis_prefix)
    try:
        async with _client(create_feedback_endpoint(kit)) as http:
            cookie = _cookie_of(await _sign_in(http))
            assert await _signed_in(http, cookie)
            proxy.cut()
            refused = await _signed_in(http, cookie)
            out = await _sign_out(http, cookie)
            bearer = await http.get("/feedback/stats",
                                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            proxy.restore()
            await _wait_for_redis(http, cookie)
            out_again = await _sign_out(http, cookie)
            after = await _signed_in(http, cookie)
    finally:
        await kit.shutdown()
        await proxy.close()
    assert not refused  # unknown whether it was signed out elsewhere: refused
    assert out.status_code == 503
    assert error_of(out)["code"] == "storage_unavailable"
    assert "set-cookie" not in out.headers  # kept, so the sign-out can be retried
    assert bearer.status_code == 200  # other rights do not depend on Redis
    assert out_again.status_code == 303
    assert not after


async def _wait_for_redis(http: httpx.AsyncClient, cookie: str) -> None:
    """Until the guard's pause after the outage ends and the cookie is checked again."""
    for _ in range(60):
        if await _signed_in(http, cookie):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("Redis never answered again")
