"""FeedbackKit: construction without I/O, lazy and lifespan startup, health, default kit."""

from __future__ import annotations

import json
import logging
import socket
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from feedback_asgi.core.result import Ok
from feedback_asgi.kit import TESTING_SECRET_KEY, FeedbackKit, get_default_kit
from feedback_asgi.middleware import FeedbackMiddleware
from tests.asgi.conftest import stored


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def app_with(kit: FeedbackKit) -> Any:
    async def hello(request: Request) -> Response:
        return PlainTextResponse("hello")

    return FeedbackMiddleware(Starlette(routes=[Route("/", hello)]), kit=kit)


async def test_for_testing_parts_and_fixed_secret() -> None:
    kit = FeedbackKit.for_testing(rating_max=10)
    assert kit.config.rating_max == 10
    assert kit.config.secret_key is not None
    assert kit.config.secret_key.get_secret_value() == TESTING_SECRET_KEY
    for part in ("config", "store", "exchanges", "registry", "collector", "service", "signer",
                 "hooks", "writer"):
        assert getattr(kit, part) is not None
    assert kit.collector.storage is kit.store
    assert kit.service.collector is kit.collector
    token = kit.signer.sign("t", "s")
    assert isinstance(FeedbackKit.for_testing().signer.verify(token, "t"), Ok)


async def test_unreachable_database_construction_is_silent_and_app_keeps_serving(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/nowhere"
    monkeypatch.setenv("FEEDBACK_ASGI_DATABASE_URL", url)
    monkeypatch.setenv("FEEDBACK_ASGI_CONNECT_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("FEEDBACK_ASGI_SECRET_KEY", "x" * 32)
    kit = FeedbackKit.from_env()  # no I/O here
    assert kit.config.database_url == url
    with caplog.at_level(logging.WARNING, logger="feedback_asgi"):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app_with(kit)), base_url="http://t"
        ) as http:
            responses = [await http.get("/") for _ in range(3)]
            await kit.ensure_started()
            health_response = await http.get("/feedback/health")
    assert [r.text for r in responses] == ["hello"] * 3
    assert all(r.headers["x-trace-id"] for r in responses)
    assert kit.started is False
    assert kit.startup_error is not None
    assert any("not reachable" in r.getMessage() for r in caplog.records)
    report = await kit.health()
    assert report.healthy is False
    assert report["database"]["reachable"] is False
    assert report["exchange_queue"]["dropped"] == 0
    json.dumps(report)
    assert health_response.status_code == 503
    await kit.shutdown()


async def test_health_of_a_reachable_sqlite_database(tmp_path: Any) -> None:
    kit = FeedbackKit.for_testing()
    kit = FeedbackKit(
        kit.config.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp_path}/f.db"})
    )
    await kit.startup()
    report = await kit.health()
    assert report.healthy is True
    assert report["database"]["reachable"] is True
    assert report["database"]["latency_ms"] >= 0
    assert report["redis"] == {"configured": False}
    assert report["writer"]["alive"] is True
    assert kit.started is True
    await kit.shutdown()
    assert report.to_dict()["healthy"] is True


async def test_lazy_start_on_first_request_without_lifespan() -> None:
    kit = FeedbackKit.for_testing()
    assert kit.started is False
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app_with(kit)), base_url="http://t"
    ) as http:
        await http.get("/")
        await kit.ensure_started()
    assert kit.started is True
    assert len(stored(kit)) == 1


async def test_default_kit_is_shared_by_middleware_without_a_kit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FEEDBACK_ASGI_DATABASE_URL", "memory://")
    monkeypatch.setenv("FEEDBACK_ASGI_SECRET_KEY", "y" * 32)

    async def hello(request: Request) -> Response:
        return PlainTextResponse("hi")

    app = Starlette(routes=[Route("/", hello)])
    app.add_middleware(FeedbackMiddleware)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
        response = await http.get("/")
    kit = get_default_kit()
    await kit.writer.flush()
    exchange = await kit.exchanges.get(response.headers["x-trace-id"])
    assert exchange is not None
    assert exchange.output == "hi"
    assert FeedbackMiddleware(app).kit is kit
    await kit.shutdown()


@pytest.mark.redis
async def test_redaction_scan_of_exchanges_stored_in_redis(redis_url: str, redis_prefix: str) -> None:
    import redis.asyncio as aioredis

    from feedback_asgi.core.config import FeedbackConfig

    config = FeedbackConfig(database_url="memory://", redis_url=redis_url,
                            redis_key_prefix=redis_prefix, secret_key="z" * 32)
    kit = FeedbackKit(config)

    async def echo(request: Request) -> Response:
        return PlainTextResponse((await request.body()).decode().replace("user", "User"),
                                 media_type="application/json",
                                 headers={"set-cookie": "sid=cookie-secret"})

    app = FeedbackMiddleware(Starlette(routes=[Route("/", echo, methods=["POST"])]), kit=kit)
    headers = {"Authorization": "Bearer s3cret", "Cookie": "sid=cookie-secret-2"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
        for _ in range(3):
            await http.post("/", json={"user": "u", "password": "hunter2"}, headers=headers)
    assert await kit.writer.flush()
    client = aioredis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{redis_prefix}*")]
        values: list[bytes] = []
        for key in keys:
            kind = await client.type(key)
            assert kind in (b"string", b"hash"), kind
            if kind == b"string":
                values.append(await client.get(key))
            else:
                values.extend((await client.hgetall(key)).values())
    finally:
        await client.aclose()
    assert len(keys) >= 3
    blob = b"".join(value or b"" for value in values)
    assert b'"Unredacted' not in blob
    assert b"[redacted]" in blob
    for secret in (b"s3cret", b"hunter2", b"cookie-secret"):
        assert secret not in blob
    await kit.shutdown()
