"""FeedbackMiddleware under a real uvicorn server on loopback: streaming, disconnects, lengths."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import pathlib
from typing import Any

import httpx
import pytest
import websockets
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from feedback_asgi.kit import FeedbackKit
from feedback_asgi.middleware import FeedbackMiddleware
from tests.asgi.conftest import stored
from tests.asgi.harness import serve


async def test_sse_first_event_arrives_before_the_second_is_produced(kit: FeedbackKit) -> None:
    client_saw_first = asyncio.Event()

    async def route(request: Request) -> Response:
        async def events() -> Any:
            yield "data: first\n\n"
            await client_saw_first.wait()  # never set if the stream is held back: deadlock
            yield "data: second\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    app = FeedbackMiddleware(Starlette(routes=[Route("/sse", route)]), kit=kit)
    events: list[str] = []
    async with (
        serve(app) as url,
        httpx.AsyncClient() as http,
        asyncio.timeout(5),
        http.stream("GET", f"{url}/sse") as response,
    ):
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                events.append(line[5:].strip())
                if len(events) == 1:
                    client_saw_first.set()
    assert events[:2] == ["first", "second"]
    feedback = json.loads(events[2])
    assert feedback["trace_id"] == response.headers["x-trace-id"]
    assert feedback["token"] == response.headers["x-feedback-token"]
    assert stored(kit)[0].output == "firstsecond"


async def test_client_disconnect_mid_stream_is_recorded(kit: FeedbackKit) -> None:
    finished = asyncio.Event()

    async def route(request: Request) -> Response:
        async def events() -> Any:
            try:
                for i in range(1000):
                    yield f"data: {i}\n\n"
                    await asyncio.sleep(0.005)
            finally:
                finished.set()

        return StreamingResponse(events(), media_type="text/event-stream")

    app = FeedbackMiddleware(Starlette(routes=[Route("/sse", route)]), kit=kit)
    async with serve(app) as url:
        async with httpx.AsyncClient() as http, http.stream("GET", f"{url}/sse") as response:
            async for line in response.aiter_lines():
                if line == "data: 2":
                    break
        async with asyncio.timeout(5):
            await finished.wait()
            for _ in range(500):  # the server task finishes the request after the generator
                if stored(kit):
                    break
                await asyncio.sleep(0.01)
    exchange = stored(kit)[0]
    assert exchange.client_disconnected is True
    assert exchange.output.startswith("012")
    assert len(exchange.output) < 1000


async def test_content_length_matches_for_every_response_kind(
    kit: FeedbackKit, tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    blob = tmp_path / "blob.bin"
    blob.write_bytes(bytes(range(256)) * 1000)

    async def json_route(request: Request) -> Response:
        return JSONResponse({"a": "b" * 100})

    async def file_route(request: Request) -> Response:
        return FileResponse(blob)

    async def stream_route(request: Request) -> Response:
        async def parts() -> Any:
            for _ in range(5):
                yield b"x" * 1000

        return StreamingResponse(parts())

    async def empty_route(request: Request) -> Response:
        return Response(status_code=204)

    app = FeedbackMiddleware(
        Starlette(
            routes=[
                Route("/json", json_route, methods=["GET", "HEAD"]),
                Route("/file", file_route),
                Route("/stream", stream_route),
                Route("/empty", empty_route),
            ]
        ),
        kit=kit,
    )
    with caplog.at_level(logging.WARNING):
        async with serve(app) as url, httpx.AsyncClient() as http:
            for method, path in (("GET", "/json"), ("GET", "/file"), ("GET", "/stream"),
                                 ("HEAD", "/json"), ("GET", "/empty")):
                response = await http.request(method, f"{url}{path}")
                # HEAD: not captured; 204: no answer
                assert ("x-trace-id" in response.headers) is (
                    method != "HEAD" and response.status_code != 204)
                if "content-length" in response.headers and method != "HEAD":
                    assert int(response.headers["content-length"]) == len(response.content)
                if method == "HEAD" or response.status_code == 204:
                    assert response.content == b""
            file_response = await http.get(f"{url}/file")
            assert file_response.content == blob.read_bytes()
    assert not [r for r in caplog.records if r.name.startswith("uvicorn")]


async def test_websocket_route_works_through_the_middleware(kit: FeedbackKit) -> None:
    async def ws_echo(websocket: WebSocket) -> None:
        await websocket.accept()
        text = await websocket.receive_text()
        await websocket.send_text(text.upper())
        await websocket.close()

    app = FeedbackMiddleware(Starlette(routes=[WebSocketRoute("/ws", ws_echo)]), kit=kit)
    async with serve(app) as url, websockets.connect(url.replace("http", "ws") + "/ws") as socket:
        await socket.send("hello")
        assert await socket.recv() == "HELLO"
    assert stored(kit) == []


async def test_lifespan_handlers_of_app_and_kit_each_run_once() -> None:
    kit = FeedbackKit.for_testing()
    calls: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        calls.append(f"startup kit.started={kit.started}")
        yield
        calls.append("shutdown")

    async def ok(request: Request) -> Response:
        return Response("ok")

    app = FeedbackMiddleware(Starlette(routes=[Route("/", ok)], lifespan=lifespan), kit=kit)
    async with serve(app, lifespan="on") as url, httpx.AsyncClient() as http:
        assert (await http.get(url)).status_code == 200
    assert calls == ["startup kit.started=True", "shutdown"]
    assert kit.started is False


async def test_app_without_lifespan_support_still_serves_and_captures(kit: FeedbackKit) -> None:
    async def django_like(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hello"})

    async with (
        serve(FeedbackMiddleware(django_like, kit=kit), lifespan="auto") as url,
        httpx.AsyncClient() as http,
    ):
        response = await http.get(url)
    assert response.text == "hello"
    assert stored(kit)[0].output == "hello"
    assert stored(kit)[0].trace_id == response.headers["x-trace-id"]
