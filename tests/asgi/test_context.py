"""FeedbackContext outside and inside requests; current_context isolation."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from feedback_asgi.context import FeedbackContext, current_context
from feedback_asgi.core.result import Ok
from feedback_asgi.kit import FeedbackKit, get_default_kit, set_default_kit
from feedback_asgi.middleware import FeedbackMiddleware
from tests.asgi.conftest import only, stored


async def test_outside_a_request_it_records_its_own_exchange(kit: FeedbackKit) -> None:
    async with FeedbackContext(kit.collector, operation="summarise", metadata={"job": 7}) as ctx:
        assert current_context() is ctx
        ctx.set_input({"text": "long", "password": "p"})
        ctx.set_result("short")
        ctx.set_metadata(model="m1", provider="local", intent="sum", project="p1", temperature=0)
    assert current_context() is None
    exchange = only(kit)
    assert exchange.trace_id == ctx.trace_id
    assert exchange.input == {"text": "long", "password": "[redacted]"}
    assert exchange.output == "short"
    assert (exchange.model, exchange.provider, exchange.intent, exchange.project) == (
        "m1", "local", "sum", "p1")
    assert exchange.operation == "summarise"
    assert exchange.metadata == {"job": 7, "temperature": 0}
    assert exchange.latency_ms is not None
    assert ctx.latency_ms is not None
    assert "method" not in exchange.metadata  # no HTTP facts for a job
    assert isinstance(kit.signer.verify(ctx.feedback_token, ctx.trace_id), Ok)


async def test_exception_type_recorded_then_reraised(kit: FeedbackKit) -> None:
    error = TimeoutError("model too slow")
    ctx = FeedbackContext(kit=kit)

    async def failing_call() -> None:
        async with ctx:
            ctx.set_input("q")
            raise error

    with pytest.raises(TimeoutError) as caught:
        await failing_call()
    assert caught.value is error
    assert ctx.error == "TimeoutError"
    assert only(kit).error == "TimeoutError"


def test_sync_with_outside_any_loop(kit: FeedbackKit) -> None:
    with FeedbackContext(kit.collector) as ctx:
        ctx.set_result("r")
    assert only(kit).output == "r"
    assert only(kit).operation == "prediction"


async def test_inside_a_request_it_enriches_that_exchange(kit: FeedbackKit) -> None:
    async def chat(request: Request) -> Response:
        body = await request.json()
        async with FeedbackContext(kit.collector, operation="chat") as ctx:
            assert ctx.in_request
            ctx.set_input(body["prompt"])
            ctx.set_result("model answer")
            ctx.set_metadata(model="m2")
            async with FeedbackContext(kit.collector) as inner:  # nested: same exchange
                inner.set_metadata(provider="p")
        return JSONResponse({"trace_id": ctx.trace_id, "token": ctx.feedback_token})

    app = FeedbackMiddleware(Starlette(routes=[Route("/chat", chat, methods=["POST"])]), kit=kit)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as http:
        response = await http.post("/chat", json={"prompt": "hello", "api_key": "k"})
    exchange = only(kit)
    assert response.json() == {"trace_id": response.headers["x-trace-id"],
                               "token": response.headers["x-feedback-token"]}
    assert exchange.input == "hello"
    assert exchange.output == "model answer"
    assert exchange.model == "m2"
    assert exchange.provider == "p"
    assert exchange.metadata["method"] == "POST"
    assert "operation_latency_ms" in exchange.metadata


async def test_concurrent_tasks_never_see_each_others_context(kit: FeedbackKit) -> None:
    seen: dict[int, Any] = {}

    async def job(n: int) -> None:
        async with FeedbackContext(kit.collector, operation=f"job{n}") as ctx:
            ctx.set_input(n)
            await asyncio.sleep(0.001 * (n % 7))
            seen[n] = current_context()
            ctx.set_result(n * 2)

    await asyncio.gather(*(job(n) for n in range(20)))
    assert all(seen[n].operation == f"job{n}" for n in range(20))
    assert sorted((e.input, e.output) for e in stored(kit)) == [(n, n * 2) for n in range(20)]


async def test_kit_is_found_from_its_collector_or_the_default() -> None:
    kit = FeedbackKit.for_testing()
    default = FeedbackKit.for_testing()
    set_default_kit(default)
    assert get_default_kit() is default
    async with FeedbackContext(kit.collector) as ctx:
        ctx.set_result("a")
    async with FeedbackContext() as ctx:
        ctx.set_result("b")
    assert [e.output for e in stored(kit)] == ["a"]
    assert [e.output for e in stored(default)] == ["b"]


def test_using_it_outside_the_block_is_an_error() -> None:
    context = FeedbackContext()
    with pytest.raises(RuntimeError, match="async with"):
        context.set_input("x")


async def test_server_code_may_name_the_response_and_the_first_exchange_stays(
    kit: FeedbackKit,
) -> None:
    async with FeedbackContext(kit.collector, trace_id="msg-41") as ctx:
        ctx.set_input("first")
    assert ctx.trace_id == "msg-41"
    assert isinstance(kit.signer.verify(ctx.feedback_token, "msg-41"), Ok)
    async with FeedbackContext(kit.collector, trace_id="msg-41") as again:
        again.set_input("second")
    found = await kit.find_exchange("msg-41")
    assert found is not None
    assert found.input == "first"  # a stored exchange is never overwritten
    assert (await kit.health())["exchange_queue"]["duplicates"] == 1
    with pytest.raises(ValueError, match="trace_id"):
        FeedbackContext(kit.collector, trace_id="has space")


async def test_inside_a_request_it_names_the_response_before_it_starts(kit: FeedbackKit) -> None:
    async def named(request: Request) -> Response:
        async with FeedbackContext(kit.collector, trace_id=request.path_params["mid"]) as ctx:
            ctx.set_result("ok")
        return JSONResponse({"trace_id": ctx.trace_id})

    async def late(request: Request) -> Response:
        async def body():  # type: ignore[no-untyped-def]
            yield b"started"
            try:
                async with FeedbackContext(kit.collector, trace_id="too-late"):
                    pass
            except RuntimeError as error:
                yield str(error).encode()

        return StreamingResponse(body())

    app = FeedbackMiddleware(
        Starlette(routes=[Route("/named/{mid}", named), Route("/late", late)]), kit=kit)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://t") as http:
        response = await http.get("/named/message-7")
        late_response = await http.get("/late")
    assert response.headers["x-trace-id"] == "message-7"
    assert isinstance(kit.signer.verify(response.headers["x-feedback-token"], "message-7"), Ok)
    assert b"before the response starts" in late_response.content
    assert late_response.headers["x-trace-id"] != "too-late"
