"""FeedbackMiddleware through real Starlette and FastAPI apps, over httpx.ASGITransport."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from feedback_asgi.capture.exchange import session_subject
from feedback_asgi.context import FeedbackContext
from feedback_asgi.core.result import Ok
from feedback_asgi.kit import FeedbackKit
from feedback_asgi.middleware import FeedbackMiddleware
from feedback_asgi.storage.memory import MemoryExchangeStore, MemoryFeedbackStore
from tests.asgi.conftest import only, stored

ORIGIN = {"Origin": "https://app.example"}


def client(app: Any, **options: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app, **options), base_url="http://testserver"
    )


async def echo(request: Request) -> Response:
    return JSONResponse(await request.json())


def echo_app(*middleware: Middleware) -> Starlette:
    return Starlette(routes=[Route("/echo", echo, methods=["POST"])], middleware=list(middleware))


# item 10: app exceptions propagate unchanged


async def test_app_exception_is_the_same_object(kit: FeedbackKit) -> None:
    error = ValueError("from the route")

    async def boom(request: Request) -> Response:
        raise error

    app = Starlette(routes=[Route("/", boom)])
    app.add_middleware(FeedbackMiddleware, kit=kit)
    async with client(app, raise_app_exceptions=True) as http:
        with pytest.raises(ValueError, match="from the route") as caught:
            await http.get("/")
    assert caught.value is error
    assert stored(kit) == []  # no answer was sent: nothing to rate


async def test_a_500_is_no_answer_and_gets_no_token(kit: FeedbackKit) -> None:
    async def boom(request: Request) -> Response:
        raise RuntimeError("x")

    app = FeedbackMiddleware(Starlette(routes=[Route("/", boom)]), kit=kit)
    async with client(app, raise_app_exceptions=False) as http:
        response = await http.get("/")
    assert response.status_code == 500
    assert "x-trace-id" not in response.headers
    assert "x-feedback-token" not in response.headers
    assert stored(kit) == []


# item 25: CORS


async def test_cors_inside_ours_gets_our_names_merged(kit: FeedbackKit) -> None:
    cors = Middleware(
        CORSMiddleware, allow_origins=["*"], allow_methods=["*"], expose_headers=["X-Other"]
    )
    app = FeedbackMiddleware(echo_app(cors), kit=kit)
    async with client(app) as http:
        response = await http.post("/echo", json={"a": 1}, headers=ORIGIN)
    exposed = [h.strip() for h in response.headers["access-control-expose-headers"].split(",")]
    assert exposed == ["X-Other", "X-Trace-Id", "X-Feedback-Token"]
    assert len(response.headers.get_list("access-control-expose-headers")) == 1


async def test_cors_outside_without_expose_leaves_the_header_to_cors(kit: FeedbackKit) -> None:
    # our layer sees no Access-Control-Allow-Origin yet: it cannot tell a CORS response
    app = CORSMiddleware(FeedbackMiddleware(echo_app(), kit=kit), allow_origins=["*"])
    async with client(app) as http:
        response = await http.post("/echo", json={"a": 1}, headers=ORIGIN)
        same_origin = await http.post("/echo", json={"a": 1})
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-expose-headers" not in response.headers
    assert "access-control-expose-headers" not in same_origin.headers
    assert response.headers["x-feedback-token"]


async def test_cors_outside_with_expose_overwrites_unless_configured(kit: FeedbackKit) -> None:
    inner = FeedbackMiddleware(echo_app(), kit=kit)
    overwriting = CORSMiddleware(inner, allow_origins=["*"], expose_headers=["X-Other"])
    documented = CORSMiddleware(
        inner, allow_origins=["*"], expose_headers=["X-Other", "X-Trace-Id", "X-Feedback-Token"]
    )
    async with client(overwriting) as http:
        response = await http.post("/echo", json={}, headers=ORIGIN)
    assert response.headers["access-control-expose-headers"] == "X-Other"  # the known overwrite
    async with client(documented) as http:
        response = await http.post("/echo", json={}, headers=ORIGIN)
    exposed = response.headers["access-control-expose-headers"].lower()
    assert "x-trace-id" in exposed
    assert "x-feedback-token" in exposed


# item 2: contextvars with sync and async routes, and BaseHTTPMiddleware around or inside


class Passthrough(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        return response


def fastapi_app(kit: FeedbackKit, placement: str) -> Any:
    app = FastAPI()

    @app.post("/async")
    async def async_route(payload: dict[str, Any]) -> dict[str, Any]:
        async with FeedbackContext(kit.collector, operation="chat") as ctx:
            ctx.set_input(payload["q"])
            await asyncio.sleep(0.001 * (payload["n"] % 5))
            ctx.set_result(f"answer to {payload['q']}")
            ctx.set_metadata(model="m-async")
        return {"trace": ctx.trace_id}

    @app.post("/sync")
    def sync_route(payload: dict[str, Any]) -> dict[str, Any]:
        with FeedbackContext(kit.collector, operation="chat") as ctx:
            ctx.set_input(payload["q"])
            ctx.set_result(f"answer to {payload['q']}")
            ctx.set_metadata(model="m-sync")
        return {"trace": ctx.trace_id}

    if placement == "inside":
        app.add_middleware(Passthrough)
    app.add_middleware(FeedbackMiddleware, kit=kit)
    if placement == "outside":
        app.add_middleware(Passthrough)
    return app


@pytest.mark.parametrize("placement", ["none", "inside", "outside"])
@pytest.mark.parametrize("route", ["/async", "/sync"])
async def test_context_values_reach_the_exchange(
    kit: FeedbackKit, placement: str, route: str
) -> None:
    app = fastapi_app(kit, placement)
    async with client(app) as http:
        responses = await asyncio.gather(
            *(http.post(route, json={"q": f"question {n}", "n": n}) for n in range(50))
        )
    exchanges = {exchange.trace_id: exchange for exchange in stored(kit)}
    assert len(exchanges) == 50
    for response in responses:
        trace_id = response.headers["x-trace-id"]
        assert response.json() == {"trace": trace_id}
        exchange = exchanges[trace_id]
        assert exchange.output == f"answer to {exchange.input}"
        assert exchange.model == f"m-{route[1:]}"
        assert exchange.operation == "chat"


# item 11: our own failures are invisible


def sse_and_plain_app() -> Starlette:
    async def get(request: Request) -> Response:
        return JSONResponse({"ok": True, "n": [1, 2, 3]}, headers={"x-app": "1"})

    async def sse(request: Request) -> Response:
        async def events() -> Any:
            for i in range(3):
                yield f"data: {i}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(
        routes=[Route("/get", get), Route("/echo", echo, methods=["POST"]), Route("/sse", sse)]
    )


OURS = {"x-trace-id", "x-feedback-token"}


async def _answers(app: Any) -> list[tuple[int, bytes, list[tuple[str, str]]]]:
    async with client(app) as http:
        results = []
        for method, path in (("GET", "/get"), ("POST", "/echo"), ("GET", "/sse")):
            response = await http.request(method, path, json={"password": "p", "a": 1})
            headers = [(k, v) for k, v in response.headers.multi_items() if k not in OURS]
            body = response.content.split(b"event: feedback\n")[0]  # minus our last event
            results.append((response.status_code, body, headers))
        return results


class FailingExchangeStore(MemoryExchangeStore):
    async def put(self, exchange: Any, ttl: float | None = None) -> None:
        raise ConnectionError("exchange store down")


class WritingExchangeStore(MemoryExchangeStore):
    """Takes finished exchanges only, as Redis does: the writer builds (and redacts) them."""

    async def put(self, exchange: Any, ttl: float | None = None) -> None:
        await super().put(exchange, ttl)


@pytest.mark.parametrize(
    ("broken_part", "counter", "count"),
    [
        ("feedback_asgi.core.tokens.TokenSigner.sign", "response_headers", 3),
        ("feedback_asgi.capture.redaction.Redactor.redact_text", "exchange_write", 1),
        ("feedback_asgi.capture.sse.SSEDataParser.feed", "response_capture", 1),
        ("store", "exchange_write", 3),
    ],
)
async def test_failing_signer_redactor_parser_and_store_are_invisible(
    monkeypatch: pytest.MonkeyPatch, broken_part: str, counter: str, count: int
) -> None:
    bare = await _answers(sse_and_plain_app())
    exchanges = FailingExchangeStore() if broken_part == "store" else WritingExchangeStore()
    # a failing write is retried until the exchange would have expired: a short TTL
    config = FeedbackKit.for_testing(exchange_ttl_seconds=0.2).config
    kit = FeedbackKit(config, store=MemoryFeedbackStore(), exchanges=exchanges)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("internal bug")

    if broken_part != "store":
        monkeypatch.setattr(broken_part, broken)
    wrapped = await _answers(FeedbackMiddleware(sse_and_plain_app(), kit=kit))
    assert wrapped == bare
    await kit.writer.flush()
    assert kit.errors.snapshot() == {counter: count}
    await kit.shutdown()


async def test_a_failing_redactor_on_reading_an_in_process_exchange_is_invisible(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    kit = FeedbackKit(FeedbackKit.for_testing().config, store=MemoryFeedbackStore(),
                      exchanges=MemoryExchangeStore())
    async with client(FeedbackMiddleware(sse_and_plain_app(), kit=kit)) as http:
        response = await http.get("/sse")
    assert response.status_code == 200
    trace_id = response.headers["x-trace-id"]

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("internal bug")

    monkeypatch.setattr("feedback_asgi.capture.redaction.Redactor.redact_text", broken)
    assert await kit.exchanges.get(trace_id) is None  # built on first read: logged, not raised
    assert any("building the exchange" in record.getMessage() for record in caplog.records)
    monkeypatch.undo()
    assert await kit.exchanges.get(trace_id) is None  # a broken entry is dropped, not retried
    await kit.shutdown()


async def test_slow_exchange_store_never_delays_responses() -> None:
    release = asyncio.Event()

    class BlockedStore(MemoryExchangeStore):
        async def put(self, exchange: Any, ttl: float | None = None) -> None:
            await release.wait()
            await super().put(exchange, ttl)

    config = FeedbackKit.for_testing(exchange_queue_size=50).config
    kit = FeedbackKit(config, store=MemoryFeedbackStore(), exchanges=BlockedStore())
    async with client(FeedbackMiddleware(sse_and_plain_app(), kit=kit)) as http:
        async with asyncio.timeout(10):
            for _ in range(200):
                response = await http.get("/get")
                assert response.status_code == 200
    # the queue kept the newest 50 (plus, maybe, one held by the blocked put)
    assert kit.writer.dropped in (149, 150)
    release.set()
    assert await kit.writer.flush()
    assert len(kit.exchanges) + kit.writer.dropped == 200  # type: ignore[arg-type]
    await kit.shutdown()


# session and user


class HeaderAuth(AuthenticationBackend):
    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        name = conn.headers.get("x-test-user")
        if name is None:
            return None
        return AuthCredentials(["authenticated"]), SimpleUser(name)


async def test_session_and_user_from_starlette_middleware(kit: FeedbackKit) -> None:
    async def login(request: Request) -> Response:
        request.session["session_id"] = "sess-42"
        return PlainTextResponse("in")

    async def me(request: Request) -> Response:
        return PlainTextResponse("me")

    app = Starlette(
        routes=[Route("/login", login), Route("/me", me)],
        middleware=[
            Middleware(FeedbackMiddleware, kit=kit),
            Middleware(SessionMiddleware, secret_key="s" * 32),
            Middleware(AuthenticationMiddleware, backend=HeaderAuth()),
        ],
    )
    async with client(app) as http:
        await http.get("/login")
        response = await http.get("/me", headers={"x-test-user": "alice"})
    exchange = stored(kit)[-1]
    assert exchange.session_id == "sess-42"
    assert exchange.user_id == "alice"
    token = response.headers["x-feedback-token"]
    claims = kit.signer.verify(token, exchange.trace_id)
    assert isinstance(claims, Ok)
    assert kit.signer.issued_to(claims.value, session_subject("sess-42"))
    assert not kit.signer.issued_to(claims.value, session_subject("sess-43"))
    assert "sess-42" not in token  # a holder learns nothing about the subject


async def test_user_header_trusted_only_when_configured() -> None:
    async def me(request: Request) -> Response:
        return PlainTextResponse("me")

    for trusted, expected in ((None, None), ("X-User-Id", "bob")):
        kit = FeedbackKit.for_testing(trusted_user_header=trusted, session_cookie="sid")
        app = FeedbackMiddleware(Starlette(routes=[Route("/", me)]), kit=kit)
        async with client(app) as http:
            await http.get("/", headers={"x-user-id": "bob", "cookie": "sid=raw-cookie-value"})
        exchange = only(kit)
        assert exchange.user_id == expected
        assert exchange.session_id is not None
        assert "raw-cookie-value" not in json.dumps(exchange.to_dict())


async def test_otel_span_is_correlation_and_session_header_is_ignored(
    kit: FeedbackKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    # as if an OpenTelemetry SDK were configured (the API alone never has an active span)
    monkeypatch.setattr(trace, "get_tracer_provider", trace.NoOpTracerProvider)
    app = FeedbackMiddleware(echo_app(), kit=kit)
    context = trace.SpanContext(
        trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
        span_id=0x00F067AA0BA902B7,
        is_remote=False,
        trace_flags=trace.TraceFlags(1),
    )
    async with client(app) as http:
        with trace.use_span(trace.NonRecordingSpan(context)):
            first = await http.post("/echo", json={}, headers={"x-session-id": "tab-1"})
            second = await http.post("/echo", json={})
    # two responses of one OpenTelemetry trace: two response ids, one otel_trace_id
    ids = {first.headers["x-trace-id"], second.headers["x-trace-id"]}
    assert len(ids) == 2
    assert "4bf92f3577b34da6a3ce929d0e0e4736" not in ids
    exchanges = stored(kit)
    assert {exchange.otel_trace_id for exchange in exchanges} == {
        "4bf92f3577b34da6a3ce929d0e0e4736"}
    # a client header is never a session
    assert [exchange.session_id for exchange in exchanges] == [None, None]
    claims = kit.signer.verify(first.headers["x-feedback-token"]).unwrap()
    assert claims.anonymous


async def test_session_header_trusted_only_when_configured() -> None:
    async def me(request: Request) -> Response:
        return PlainTextResponse("me")

    for trusted, expected in ((None, None), ("X-Proxy-Session", "tab-1")):
        kit = FeedbackKit.for_testing(trusted_session_header=trusted)
        app = FeedbackMiddleware(Starlette(routes=[Route("/", me)]), kit=kit)
        async with client(app) as http:
            response = await http.get(
                "/", headers={"x-proxy-session": "tab-1", "x-session-id": "tab-1"})
        assert only(kit).session_id == expected
        claims = kit.signer.verify(response.headers["x-feedback-token"]).unwrap()
        assert kit.signer.issued_to(claims, session_subject("tab-1")) is (expected is not None)


# item 30: secrets never reach storage


async def test_no_secret_reaches_the_exchange_store(kit: FeedbackKit) -> None:
    async def leaky(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = (await request.body()).decode()
        return JSONResponse(
            {"echo": body, "api_key": "sk-live-123"},
            headers={"set-cookie": "session=cookie-secret"},
        )

    app = FeedbackMiddleware(Starlette(routes=[Route("/", leaky, methods=["POST"])]), kit=kit)
    headers = {"Authorization": "Bearer s3cret", "Cookie": "sid=cookie-secret-2"}
    async with client(app) as http:
        await http.post("/", json={"user": "u", "password": "hunter2"}, headers=headers)
        await http.post("/", content=b'{"password": "hunter2", "cut', headers=headers)
    dump = json.dumps([exchange.to_dict() for exchange in stored(kit)])
    for secret in ("s3cret", "hunter2", "sk-live-123", "cookie-secret"):
        assert secret not in dump
    assert '"user": "u"' in dump


async def test_excluded_and_disabled_paths_pass_through(kit: FeedbackKit) -> None:
    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    app = FeedbackMiddleware(Starlette(routes=[Route("/healthz", health)]), kit=kit)
    async with client(app) as http:
        response = await http.get("/healthz")
    assert "x-trace-id" not in response.headers
    disabled = FeedbackKit.for_testing(enabled=False)
    app = FeedbackMiddleware(echo_app(), kit=disabled)
    async with client(app) as http:
        response = await http.post("/echo", json={})
    assert "x-trace-id" not in response.headers
    assert stored(kit) == []
    assert stored(disabled) == []
