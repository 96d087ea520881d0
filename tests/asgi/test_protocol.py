"""ASGI protocol edges of FeedbackMiddleware, on the raw harness (PITFALLS items 1-14, 19, 26-29)."""

from __future__ import annotations

import asyncio
import json
import pathlib
import time
from typing import Any

import anyio
import pytest
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from feedback_asgi.capture.exchange import CAPTURE_SCOPE_KEY, current_capture
from feedback_asgi.core.result import Ok
from feedback_asgi.kit import FeedbackKit
from feedback_asgi.middleware import FeedbackMiddleware
from tests.asgi.conftest import only, stored
from tests.asgi.harness import Message, Receiver, Sender, disconnect_after, http_scope, request

BODIES = [b"", b"x" * 1024, bytes(range(256)) * 40]


# item 4: the app reads exactly what it would read without us


async def raw_reader(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def body_route(request: Request) -> Response:
    return Response(await request.body())


async def stream_route(request: Request) -> Response:
    parts = [chunk async for chunk in request.stream()]
    return Response(b"".join(parts))


async def unread_route(request: Request) -> Response:
    return PlainTextResponse("no")


def starlette_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/body", body_route, methods=["POST"]),
            Route("/stream", stream_route, methods=["POST"]),
            Route("/unread", unread_route, methods=["POST"]),
        ]
    )


async def drive(app: Any, scope: dict[str, Any], receiver: Receiver) -> Sender:
    sender = Sender()
    await app(scope, receiver, sender)
    return sender


@pytest.mark.parametrize("body", BODIES, ids=["0B", "1KiB", "10KiB"])
@pytest.mark.parametrize("path", ["raw", "/body", "/stream", "/unread"])
async def test_app_reads_the_same_bytes_and_receive_is_never_over_called(
    kit: FeedbackKit, body: bytes, path: str
) -> None:
    inner: Any = raw_reader if path == "raw" else starlette_app()
    route = "/raw" if path == "raw" else path
    results = []
    for app in (inner, FeedbackMiddleware(inner, kit=kit)):
        receiver = Receiver(*request(body, chunks=3))
        sender = await drive(app, http_scope("POST", route), receiver)
        results.append((sender.start["status"], sender.body, receiver.calls))
    assert results[0] == results[1]
    exchange = only(kit)
    if path == "/unread":
        assert exchange.metadata["input_read"] is False
        assert results[1][0] == 200
    else:
        assert results[1][1] == body
        assert exchange.metadata["request_bytes"] == len(body)


# item 5: no replay: streaming responses with disconnect listeners get every event


async def test_streaming_and_sse_with_disconnect_listeners_deliver_every_event(
    kit: FeedbackKit,
) -> None:
    async def numbers() -> Any:
        for i in range(20):
            yield f"data: {i}\n\n"
            await asyncio.sleep(0)

    async def plain(request: Request) -> Response:
        return StreamingResponse(numbers(), media_type="text/event-stream")

    async def sse(request: Request) -> Response:
        async def events() -> Any:
            for i in range(20):
                yield {"data": str(i)}

        return EventSourceResponse(events(), ping=600)

    app = FeedbackMiddleware(
        Starlette(routes=[Route("/plain", plain), Route("/sse", sse)]), kit=kit
    )
    for path in ("/plain", "/sse"):
        done = asyncio.Event()

        async def hook(message: Message, done: asyncio.Event = done) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                done.set()

        receiver = Receiver(*request(), disconnect_after(done))
        sender = Sender(hook)
        cpu = time.process_time()
        async with asyncio.timeout(5):
            await app(http_scope("GET", path), receiver, sender)
        cpu = time.process_time() - cpu
        text = sender.body.decode()
        assert [int(x) for x in _data_lines(text)[:-1]] == list(range(20)), text
        assert "event: feedback" in text
        assert receiver.calls <= receiver.scripted
        assert cpu < 0.5  # a replaying shim would spin here (busy loop guard, not a benchmark)
    outputs = [exchange.output for exchange in stored(kit)]
    assert outputs == ["".join(str(i) for i in range(20))] * 2


def _data_lines(text: str) -> list[str]:
    return [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]


# item 7: a client gone mid-stream


async def test_send_failing_mid_stream_records_once_with_the_flag() -> None:
    kit = FeedbackKit.for_testing()
    closed = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def chunks() -> Any:
            try:
                for i in range(10):
                    yield f"chunk{i};".encode()
            finally:
                closed.set()

        await send({"type": "http.response.start", "status": 200, "headers": []})
        generator = chunks()
        try:
            async for chunk in generator:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        finally:
            await generator.aclose()

    sent = 0

    async def hook(message: Message) -> None:
        nonlocal sent
        if message["type"] == "http.response.body":
            sent += 1
            if sent == 3:
                raise OSError("client went away")

    await kit.startup()
    baseline = len(asyncio.all_tasks())
    receiver = Receiver({"type": "http.disconnect"})
    with pytest.raises(OSError, match="client went away"):
        await FeedbackMiddleware(app, kit=kit)(http_scope(), receiver, Sender(hook))
    assert closed.is_set()
    exchange = only(kit)
    assert exchange.output == "chunk0;chunk1;"
    assert exchange.client_disconnected is True
    assert len(asyncio.all_tasks()) == baseline


# item 8: SSE ordering by events, and exact data payloads


async def test_first_event_reaches_the_client_before_the_second_is_produced(
    kit: FeedbackKit,
) -> None:
    seen_first = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"data: one\n\n", "more_body": True})
        await seen_first.wait()  # deadlocks if the middleware holds event 1 back
        await send({"type": "http.response.body", "body": b"data: two\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def hook(message: Message) -> None:
        if message.get("body") == b"data: one\n\n":
            seen_first.set()

    sender = Sender(hook)
    with anyio.fail_after(2):
        await FeedbackMiddleware(app, kit=kit)(http_scope(), Receiver(*request()), sender)
    assert sender.bodies[:2] == [b"data: one\n\n", b"data: two\n\n"]
    last = sender.messages[-1]
    assert last["more_body"] is False
    assert last["body"].startswith(b"event: feedback\ndata: ")
    payload = json.loads(last["body"].split(b"data: ", 1)[1])
    assert payload["trace_id"] == sender.header(b"x-trace-id")[0].decode()
    assert payload["token"] == sender.header(b"x-feedback-token")[0].decode()
    assert len(sender.bodies) == 3  # the app's empty last message became our event
    assert only(kit).output == "onetwo"


@pytest.mark.parametrize(
    "chunks",
    [
        [b"data: hel", b"lo\n\ndata: wor", b"ld\n\n"],
        [b"data: hello\r\n\r\n", b"data: world\r", b"\n\r\n"],
        [b"data: hello\n", b"\ndata: world"],  # the app ends mid-event
    ],
)
async def test_sse_capture_is_exact_for_split_and_crlf_streams(
    kit: FeedbackKit, chunks: list[bytes]
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/event-stream; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": not last})

    sender = Sender()
    await FeedbackMiddleware(app, kit=kit)(http_scope(), Receiver(*request()), sender)
    assert sender.body.startswith(b"".join(chunks))
    assert only(kit).output in ("helloworld", "hello\nworld")
    assert only(kit).output == "helloworld"
    tail = sender.body[len(b"".join(chunks)) :]
    if chunks[-1].endswith(b"world"):
        # our event would complete (deliver) the app's unfinished one: none is added
        assert tail == b""
    else:
        assert tail.startswith(b"event: feedback\n")


async def test_sse_event_can_be_turned_off() -> None:
    kit = FeedbackKit.for_testing(sse_feedback_event=False)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"data: a\n\n"})

    sender = Sender()
    await FeedbackMiddleware(app, kit=kit)(http_scope(), Receiver(*request()), sender)
    assert sender.body == b"data: a\n\n"
    assert sender.header(b"x-feedback-token")


# item 1: BackgroundTask deadlock guard; no BaseHTTPMiddleware anywhere


async def test_response_completes_before_its_background_task(kit: FeedbackKit) -> None:
    final_seen = asyncio.Event()

    async def wait_for_client() -> None:
        await final_seen.wait()

    async def route(request: Request) -> Response:
        return PlainTextResponse("done", background=BackgroundTask(wait_for_client))

    async def hook(message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body"):
            final_seen.set()

    app = FeedbackMiddleware(Starlette(routes=[Route("/", route)]), kit=kit)
    sender = Sender(hook)
    with anyio.fail_after(2):
        await app(http_scope(), Receiver(*request()), sender)
    assert sender.body == b"done"


def test_no_base_http_middleware_in_the_package() -> None:
    package = pathlib.Path(__file__).resolve().parents[2] / "feedback_asgi"
    for path in package.rglob("*.py"):
        text = path.read_text()
        assert "BaseHTTPMiddleware" not in text, path
        assert "call_next" not in text or path.name == "hooks.py", path


# item 10: exceptions


async def test_exception_after_first_chunk_is_reraised_and_recorded(kit: FeedbackKit) -> None:
    error = ValueError("boom")

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part1", "more_body": True})
        raise error

    sender = Sender()
    with pytest.raises(ValueError, match="boom") as caught:
        await FeedbackMiddleware(app, kit=kit)(http_scope(), Receiver(*request()), sender)
    assert caught.value is error
    assert [m["type"] for m in sender.messages] == ["http.response.start", "http.response.body"]
    exchange = only(kit)
    assert exchange.error == "ValueError"
    assert exchange.status == 200
    assert exchange.output == "part1"


async def test_exception_before_start_stores_nothing(kit: FeedbackKit) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise KeyError("nope")

    sender = Sender()
    with pytest.raises(KeyError):
        await FeedbackMiddleware(app, kit=kit)(http_scope(), Receiver(), sender)
    assert sender.messages == []
    assert stored(kit) == []


# item 12: interleaved requests never share state


async def test_interleaved_requests_keep_their_own_exchanges(kit: FeedbackKit) -> None:
    gates = {"/a": asyncio.Event(), "/b": asyncio.Event()}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = (await receive())["body"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await gates[scope["path"]].wait()
        await send({"type": "http.response.body", "body": body * 2})

    middleware = FeedbackMiddleware(app, kit=kit)
    before = {name: getattr(middleware, name) for name in FeedbackMiddleware.__slots__}
    senders = {path: Sender() for path in gates}
    task_a = asyncio.create_task(
        middleware(http_scope("POST", "/a"), Receiver(*request(b"AAA")), senders["/a"])
    )
    await asyncio.sleep(0.01)
    task_b = asyncio.create_task(
        middleware(http_scope("POST", "/b"), Receiver(*request(b"B")), senders["/b"])
    )
    gates["/b"].set()
    await task_b
    gates["/a"].set()
    await task_a
    after = {name: getattr(middleware, name) for name in FeedbackMiddleware.__slots__}
    assert before == after
    by_path = {exchange.endpoint: exchange for exchange in stored(kit)}
    assert by_path["/a"].input == "AAA"
    assert by_path["/a"].output == "AAAAAA"
    assert by_path["/a"].metadata["response_bytes"] == 6
    assert by_path["/b"].input == "B"
    assert by_path["/b"].metadata["response_bytes"] == 2
    assert by_path["/a"].trace_id != by_path["/b"].trace_id
    assert senders["/a"].header(b"x-trace-id") != senders["/b"].header(b"x-trace-id")


# item 13: websocket, unknown scopes and lifespan


async def test_websocket_and_unknown_scopes_are_untouched(kit: FeedbackKit) -> None:
    seen: list[tuple[Any, Any, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append((scope, receive, send))

    middleware = FeedbackMiddleware(app, kit=kit)
    for scope in ({"type": "websocket", "path": "/ws", "headers": []}, {"type": "custom"}):
        receiver, sender = Receiver(), Sender()
        await middleware(scope, receiver, sender)
        assert seen[-1][0] is scope
        assert seen[-1][1] is receiver
        assert seen[-1][2] is sender
        assert CAPTURE_SCOPE_KEY not in scope
    assert stored(kit) == []


async def test_lifespan_starts_and_stops_the_kit_and_the_app() -> None:
    kit = FeedbackKit.for_testing()
    events: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                events.append(f"app startup, kit started={kit.started}")
                await send({"type": "lifespan.startup.complete"})
            else:
                events.append("app shutdown")
                await send({"type": "lifespan.shutdown.complete"})
                return

    receiver = Receiver({"type": "lifespan.startup"}, {"type": "lifespan.shutdown"})
    sender = Sender()
    await FeedbackMiddleware(app, kit=kit)({"type": "lifespan"}, receiver, sender)
    assert events == ["app startup, kit started=True", "app shutdown"]
    assert [m["type"] for m in sender.messages] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert kit.started is False  # shut down after the app's own shutdown


async def test_lifespan_error_of_the_app_is_reraised(kit: FeedbackKit) -> None:
    async def django_like(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise ValueError("Django can only handle ASGI/HTTP connections, not lifespan.")

    with pytest.raises(ValueError, match="not lifespan"):
        await FeedbackMiddleware(django_like, kit=kit)(
            {"type": "lifespan"}, Receiver({"type": "lifespan.startup"}), Sender()
        )


# item 14: header lists


SHARED_HEADERS = [(b"content-type", b"text/plain"), (b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")]


async def test_header_lists_are_rebuilt_never_mutated(kit: FeedbackKit) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers: Any = SHARED_HEADERS if scope["path"] != "/tuple" else tuple(SHARED_HEADERS)
        if scope["path"] == "/ours":
            headers = [*SHARED_HEADERS, (b"X-Trace-Id", b"app-set"), (b"x-feedback-token", b"t")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    middleware = FeedbackMiddleware(app, kit=kit)
    for path in ("/list", "/list", "/tuple", "/ours"):
        sender = Sender()
        await middleware(http_scope("GET", path), Receiver(*request()), sender)
        assert sender.header(b"set-cookie") == [b"a=1", b"b=2"]
        assert len(sender.header(b"x-trace-id")) == 1
        assert len(sender.header(b"x-feedback-token")) == 1
        assert sender.header(b"x-feedback-token") != [b"t"]
        # the app's own X-Trace-Id is kept; our token still names our response id
        assert (sender.header(b"x-trace-id") == [b"app-set"]) is (path == "/ours")
    assert len(SHARED_HEADERS) == 3


async def test_response_id_is_minted_and_incoming_ids_are_correlation_only(
    kit: FeedbackKit, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    middleware = FeedbackMiddleware(app, kit=kit)

    async def ids_for(headers: list[tuple[bytes, bytes]]) -> tuple[str, str | None, str | None]:
        sender = Sender()
        await middleware(http_scope(headers=headers), Receiver(*request()), sender)
        trace_id = sender.header(b"x-trace-id")[0].decode()
        exchange = await kit.exchanges.get(trace_id)
        assert exchange is not None
        assert isinstance(kit.signer.verify(sender.header(b"x-feedback-token")[0].decode(),
                                            trace_id), Ok)
        return trace_id, exchange.request_id, exchange.otel_trace_id

    victim = "4bf92f3577b34da6a3ce929d0e0e4736"
    parent = f"00-{victim}-00f067aa0ba902b7-01".encode()
    minted: set[str] = set()
    for headers, request_id, otel in (
        ([(b"X-TRACE-ID", victim.encode())], victim, None),
        ([(b"x-request-id", b"req-9"), (b"x-trace-id", b"other")], "req-9", None),
        ([(b"traceparent", parent)], None, victim),
        ([(b"traceparent", parent)], None, victim),  # one OpenTelemetry trace, two responses
    ):
        trace_id, got_request, got_otel = await ids_for(headers)
        assert len(trace_id) == 32
        assert trace_id != victim  # never the id a client sent
        assert (got_request, got_otel) == (request_id, otel)
        minted.add(trace_id)
    assert len(minted) == 4
    bad = [b"abc\r\nx-evil: 1", b"a" * 10_000, "caf\u00e9".encode()]
    with caplog.at_level("WARNING", logger="feedback_asgi"):
        for value in bad:
            trace_id, request_id, _ = await ids_for([(b"x-trace-id", value)])
            assert request_id is None
            assert "evil" not in trace_id
    assert len([r for r in caplog.records if "request id" in r.getMessage()]) == 1
    assert kit.errors.count("invalid incoming request id ignored") == 3


# item 19: finishing at the right moment


async def test_four_chunks_one_exchange_and_latency_excludes_background(kit: FeedbackKit) -> None:
    release = asyncio.Event()
    task_started = asyncio.Event()
    during_task: list[int] = []

    async def background() -> None:
        during_task.append(len(stored(kit)))
        task_started.set()
        await release.wait()

    async def route(request: Request) -> Response:
        async def chunks() -> Any:
            for i in range(4):
                yield f"c{i}"

        return StreamingResponse(chunks(), background=BackgroundTask(background))

    app = FeedbackMiddleware(Starlette(routes=[Route("/", route)]), kit=kit)
    started = time.perf_counter()
    run = asyncio.create_task(app(http_scope(), Receiver(*request(), *request()), Sender()))
    await task_started.wait()
    await asyncio.sleep(0.2)
    release.set()
    await run
    elapsed_ms = (time.perf_counter() - started) * 1000
    assert during_task == [1]  # recorded before the background task ran
    exchange = only(kit)
    assert exchange.output == "c0c1c2c3"
    assert exchange.latency_ms is not None
    assert exchange.latency_ms < elapsed_ms - 150


async def test_trailers_complete_the_exchange_and_pass_through(kit: FeedbackKit) -> None:
    snapshots: list[int] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        start = {"type": "http.response.start", "status": 200, "headers": [], "trailers": True}
        await send(start)
        await send({"type": "http.response.body", "body": b"data", "more_body": False})
        snapshots.append(len(stored(kit)))
        await send({"type": "http.response.trailers", "headers": [], "more_trailers": True})
        snapshots.append(len(stored(kit)))
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"1")]})
        snapshots.append(len(stored(kit)))

    sender = Sender()
    await FeedbackMiddleware(app, kit=kit)(http_scope(), Receiver(*request()), sender)
    assert snapshots == [0, 0, 1]
    assert [m["type"] for m in sender.messages][-2:] == ["http.response.trailers"] * 2


# item 26: the caller's scope is not mutated


async def test_callers_scope_and_headers_unchanged(kit: FeedbackKit) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope[CAPTURE_SCOPE_KEY] is current_capture()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    scope = http_scope(headers=[(b"host", b"x"), (b"x-trace-id", b"keep")])
    keys, headers = set(scope), list(scope["headers"])
    header_list = scope["headers"]
    await FeedbackMiddleware(app, kit=kit)(scope, Receiver(*request()), Sender())
    assert set(scope) == keys
    assert scope["headers"] is header_list
    assert scope["headers"] == headers
    assert current_capture() is None


# item 27: double application


async def test_double_application_captures_once(kit: FeedbackKit) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    sender = Sender()
    twice = FeedbackMiddleware(FeedbackMiddleware(app, kit=kit), kit=kit)
    await twice(http_scope(), Receiver(*request()), sender)
    assert len(sender.header(b"x-trace-id")) == 1
    assert len(stored(kit)) == 1


# item 29: extension messages


async def test_pathsend_and_unknown_messages_pass_through(kit: FeedbackKit) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.debug", "info": {}})
        await send({"type": "http.response.pathsend", "path": "/tmp/file.bin"})

    scope = http_scope(extensions={"http.response.pathsend": {}})
    bare, wrapped = Sender(), Sender()
    await app(scope, Receiver(*request()), bare)
    await FeedbackMiddleware(app, kit=kit)(scope, Receiver(*request()), wrapped)
    assert wrapped.messages[1:] == bare.messages[1:]
    assert wrapped.messages[1] is not None
    exchange = only(kit)
    assert exchange.output is None
    assert exchange.metadata["output_body"] == {"file": True}
