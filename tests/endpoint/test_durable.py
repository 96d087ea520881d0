"""The endpoint on real databases: idempotency and one-vote races across separate kits
(as separate worker processes would be), outages answered 503, and no secret stored."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.kit import FeedbackKit
from feedback_asgi.middleware import FeedbackMiddleware
from tests.endpoint.apps import client, error_of, hello
from tests.tcp_proxy import TcpProxy

SECRET = "durable-tests-secret-key-0123456789abcdef"
TRACE = "trace-durable"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'feedback.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def make_kit(url: str, **settings: object) -> FeedbackKit:
    return FeedbackKit(
        FeedbackConfig(database_url=url, secret_key=SECRET, connect_timeout_seconds=1.0,
                       **settings)
    )


@pytest.fixture
async def kits(database_url: str) -> AsyncIterator[tuple[FeedbackKit, FeedbackKit]]:
    """Two kits on one database: two connection pools, like two worker processes."""
    first, second = make_kit(database_url), make_kit(database_url)
    try:
        yield first, second
    finally:
        await first.shutdown()
        await second.shutdown()


def app_for(kit: FeedbackKit) -> FeedbackMiddleware:
    return FeedbackMiddleware(Starlette(routes=[Route("/hello", hello)]), kit=kit)


async def test_retries_with_one_key_across_workers_store_one_row(
    kits: tuple[FeedbackKit, FeedbackKit],
) -> None:
    a, b = kits
    token = a.signer.sign(TRACE, "alice")
    headers = {"X-Feedback-Token": token, "Idempotency-Key": "lost-response-1"}
    body = {"trace_id": TRACE, "type": "thumbs", "value": "up"}
    async with client(app_for(a)) as http_a, client(app_for(b)) as http_b:
        first = await http_a.post("/feedback", json=body, headers=headers)
        retries = await asyncio.gather(
            *(http.post("/feedback", json=body, headers=headers) for http in [http_a, http_b] * 4)
        )
    assert first.status_code == 201, first.text
    assert {r.status_code for r in retries} == {201}
    assert {r.json()["feedback_id"] for r in retries} == {first.json()["feedback_id"]}
    assert len(await a.store.find_by_trace(TRACE, include_history=True)) == 1


async def test_concurrent_duplicates_of_a_later_vote_across_workers(
    kits: tuple[FeedbackKit, FeedbackKit],
) -> None:
    a, b = kits
    token = a.signer.sign(TRACE, "alice")
    async with client(app_for(a)) as http_a, client(app_for(b)) as http_b:
        first = await http_a.post("/feedback", json={"trace_id": TRACE, "type": "thumbs",
                                                     "value": "up"},
                                  headers={"X-Feedback-Token": token})
        headers = {"X-Feedback-Token": token, "Idempotency-Key": "flip"}
        body = {"trace_id": TRACE, "type": "thumbs", "value": "down"}
        flips = await asyncio.gather(
            *(http.post("/feedback", json=body, headers=headers) for http in [http_a, http_b] * 3)
        )
    assert first.status_code == 201
    assert {r.status_code for r in flips} == {201}, [r.text for r in flips]
    assert len({r.json()["feedback_id"] for r in flips}) == 1
    rows = await a.store.find_by_trace(TRACE, include_history=True)
    assert len(rows) == 2
    live = await a.store.find_by_trace(TRACE)
    assert [(i.value, i.supersedes) for i in live] == [(-1, first.json()["feedback_id"])]


async def test_concurrent_votes_across_workers_leave_one_live(
    kits: tuple[FeedbackKit, FeedbackKit],
) -> None:
    a, b = kits
    headers = {"X-Feedback-Token": a.signer.sign(TRACE, "alice")}
    async with client(app_for(a)) as http_a, client(app_for(b)) as http_b:
        votes = await asyncio.gather(
            *(
                http.post("/feedback", headers=headers,
                          json={"trace_id": TRACE, "type": "thumbs", "value": value})
                for http, value in zip([http_a, http_b] * 3, ["up", "down"] * 3, strict=True)
            )
        )
    assert {r.status_code for r in votes} == {201}, [r.text for r in votes]
    assert len(await a.store.find_by_trace(TRACE)) == 1
    assert len(await a.store.find_by_trace(TRACE, include_history=True)) == 6
    summary = await a.store.aggregate()
    assert summary.thumbs_up + summary.thumbs_down == 1


async def test_postgres_cut_answers_503_while_the_app_keeps_serving(postgres_url: str) -> None:
    url = make_url(postgres_url)
    assert url.host is not None
    assert url.port is not None
    proxy = await TcpProxy(url.host, url.port).start()
    kit = make_kit(url.set(port=proxy.port).render_as_string(hide_password=False))
    token = kit.signer.sign(TRACE, "alice")
    try:
        async with client(app_for(kit)) as http:
            before = await http.post("/feedback", json={"trace_id": TRACE, "type": "rating",
                                                        "value": 4},
                                     headers={"X-Feedback-Token": token})
            assert before.status_code == 201, before.text
            proxy.cut()
            during = await http.post("/feedback", json={"trace_id": "t-2", "type": "rating",
                                                        "value": 2},
                                     headers={"X-Feedback-Token": kit.signer.sign("t-2")})
            own_route = await http.get("/hello")
            health = await http.get("/feedback/health")
            proxy.restore()
            after = await http.post("/feedback", json={"trace_id": "t-3", "type": "rating",
                                                       "value": 5},
                                    headers={"X-Feedback-Token": kit.signer.sign("t-3")})
        assert during.status_code == 503
        assert error_of(during)["code"] == "storage_unavailable"
        assert int(during.headers["retry-after"]) > 0
        assert own_route.status_code == 200
        assert own_route.json() == {"hello": "world"}
        assert health.status_code == 503
        assert health.json()["database"] == "unavailable"
        assert after.status_code == 201, after.text
        traces = {i.trace_id async for i in kit.store.iter_items(include_history=True)}
        assert traces == {TRACE, "t-3"}
    finally:
        await kit.shutdown()
        await proxy.close()


async def test_database_on_a_wrong_port_answers_503() -> None:
    proxy = await TcpProxy("127.0.0.1", 5432).start()
    port = proxy.port
    await proxy.close()  # nothing listens there any more
    kit = make_kit(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/nowhere")
    try:
        async with client(app_for(kit)) as http:
            response = await http.post("/feedback", json={"trace_id": TRACE, "type": "thumbs",
                                                          "value": 1},
                                       headers={"X-Feedback-Token": kit.signer.sign(TRACE)})
            own_route = await http.get("/hello")
        assert response.status_code == 503
        assert "retry-after" in response.headers
        assert error_of(response)["code"] == "storage_unavailable"
        assert own_route.status_code == 200
    finally:
        await kit.shutdown()


async def echo(request: Request) -> JSONResponse:
    data = await request.json()
    return JSONResponse({"answer": f"echo {data['message']}", "password": "hunter2-out",
                         "api_key": "key-out-secret"})


async def test_no_secret_reaches_the_database(tmp_path: Path) -> None:
    path = tmp_path / "scan.db"
    kit = make_kit(f"sqlite+aiosqlite:///{path}")
    app = FeedbackMiddleware(Starlette(routes=[Route("/chat", echo, methods=["POST"])]), kit=kit)
    secrets = ["s3cret-auth-value", "cookie-secret-value", "hunter2", "key-out-secret",
               "meta-secret", "proxy-secret"]
    try:
        async with client(app) as http:
            chat = await http.post(
                "/chat",
                json={"message": "visible-input", "password": "hunter2", "token": "hunter2"},
                headers={"Authorization": "Bearer s3cret-auth-value",
                         "Cookie": "session=cookie-secret-value",
                         "Proxy-Authorization": "Basic proxy-secret"},
            )
            assert chat.status_code == 200
            trace, token = chat.headers["x-trace-id"], chat.headers["x-feedback-token"]
            feedback = await http.post(
                "/feedback",
                json={"trace_id": trace, "type": "thumbs", "value": "up",
                      "metadata": {"password": "meta-secret", "note": "kept"}},
                headers={"X-Feedback-Token": token, "Authorization": "Bearer s3cret-auth-value",
                         "Cookie": "session=cookie-secret-value"},
            )
            assert feedback.status_code == 201, feedback.text
    finally:
        await kit.shutdown()
    with sqlite3.connect(path) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        dump = "\n".join(
            repr(row) for table in tables for row in db.execute(f'SELECT * FROM "{table}"')
        )
    assert "visible-input" in dump  # the exchange it rates is there ...
    assert "kept" in dump
    for secret in secrets:  # ... and no secret is
        assert secret not in dump, secret


async def test_exchange_captured_by_another_worker_through_redis(
    postgres_url: str, redis_url: str, redis_prefix: str
) -> None:
    settings = {"redis_url": redis_url, "redis_key_prefix": redis_prefix}
    capturing, posting = make_kit(postgres_url, **settings), make_kit(postgres_url, **settings)
    app = FeedbackMiddleware(Starlette(routes=[Route("/chat", echo, methods=["POST"])]),
                             kit=capturing)
    try:
        async with client(app) as http:
            chat = await http.post("/chat", json={"message": "from worker one"})
        trace, token = chat.headers["x-trace-id"], chat.headers["x-feedback-token"]
        for _ in range(200):  # the writer stores the exchange off the request path
            if await posting.exchanges.get(trace) is not None:
                break
            await asyncio.sleep(0.01)
        async with client(app_for(posting)) as http:
            feedback = await http.post("/feedback",
                                       json={"trace_id": trace, "type": "rating", "value": 3},
                                       headers={"X-Feedback-Token": token})
        assert feedback.status_code == 201, feedback.text
        item = await posting.store.get(feedback.json()["feedback_id"])
        assert item is not None
        assert item.context["input"]["message"] == "from worker one"
        assert item.context["output"]["answer"] == "echo from worker one"
    finally:
        await capturing.shutdown()
        await posting.shutdown()
