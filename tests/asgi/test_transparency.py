"""The app behaves as without us: the findings of running Starlette's and FastAPI's own suites
with FeedbackMiddleware injected, one test each (scope, bodyless responses, the app's own
X-Trace-Id, unfinished SSE events, trio, what gets a token, CORS exposure)."""

from __future__ import annotations

import gc
import logging
import pathlib
import warnings
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from feedback_asgi import FeedbackMiddleware
from feedback_asgi.capture.exchange import CAPTURE_SCOPE_KEY
from feedback_asgi.core.tokens import TokenSigner
from feedback_asgi.integrations.starlette import feedback_routes
from feedback_asgi.kit import FeedbackKit
from tests.asgi.conftest import only, stored
from tests.asgi.harness import Receiver, Sender, http_scope, request, serve


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://testserver")


async def user(request: Request) -> Response:
    return JSONResponse({"user": request.path_params["name"]})


# 1. the caller's own scope


async def test_the_app_gets_the_callers_scope_and_router_changes_reach_outer_layers(
    kit: FeedbackKit,
) -> None:
    seen: dict[str, Any] = {}

    def outer(app: Any) -> Any:
        async def middleware(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await app(scope, receive, send)
            if scope["type"] == "http":
                seen.update(scope)

        return middleware

    inner_scopes: list[Any] = []

    async def remember(request: Request) -> Response:
        inner_scopes.append(request.scope)
        return await user(request)

    app = Starlette(routes=[Route("/users/{name}", remember)])
    wrapped = outer(FeedbackMiddleware(app, kit=kit))
    async with client(wrapped) as http:
        response = await http.get("/users/ann")
    assert response.json() == {"user": "ann"}
    assert seen["path_params"] == {"name": "ann"}
    assert seen["route"].path == "/users/{name}"  # what OpenTelemetry names the span by
    assert seen["endpoint"] is remember
    assert CAPTURE_SCOPE_KEY not in seen  # our key is gone once the app returned
    assert only(kit).endpoint == "/users/ann"


async def test_the_app_receives_the_very_scope_object_it_was_given(kit: FeedbackKit) -> None:
    received: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        received.append(scope)
        assert scope[CAPTURE_SCOPE_KEY] is not None
        scope.pop("state")  # a change by the app is the caller's change too
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    scope = http_scope()
    await FeedbackMiddleware(app, kit=kit)(scope, Receiver(*request()), Sender())
    assert received == [scope]
    assert received[0] is scope
    assert "state" not in scope
    assert CAPTURE_SCOPE_KEY not in scope


# 2. nothing added to a response that has no body


@pytest.mark.parametrize("status", [204, 304])
async def test_a_bodyless_event_stream_stays_bodyless_and_its_background_task_runs(
    kit: FeedbackKit, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[int] = []

    async def empty(request: Request) -> Response:
        return Response(status_code=status, media_type="text/event-stream",
                        background=BackgroundTask(ran.append, status))

    app = FeedbackMiddleware(Starlette(routes=[Route("/", empty)]), kit=kit)
    with caplog.at_level(logging.WARNING):
        async with serve(app) as url, httpx.AsyncClient() as http:
            for _ in range(2):
                response = await http.get(f"{url}/")
                assert response.status_code == status
                assert response.content == b""
                assert "x-feedback-token" not in response.headers
    assert ran == [status, status]
    assert not [r for r in caplog.records if r.name.startswith("uvicorn")]
    assert stored(kit) == []


async def test_an_event_stream_with_a_fixed_content_length_gets_no_event(kit: FeedbackKit) -> None:
    body = b"data: one\n\n"

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/event-stream"),
                   (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    sender = Sender()
    await FeedbackMiddleware(app, kit=kit)(http_scope(), Receiver(*request()), sender)
    assert sender.body == body
    assert sender.header(b"x-feedback-token")  # still an answer, with its token header


# 3. the app's own X-Trace-Id


async def test_an_apps_own_trace_id_is_kept_and_the_token_still_works(kit: FeedbackKit) -> None:
    async def answer(request: Request) -> Response:
        return JSONResponse({"answer": "42"}, headers={"X-Trace-Id": "app-chosen-7"})

    app = FeedbackMiddleware(Starlette(routes=[Route("/chat", answer)]), kit=kit)
    async with client(app) as http:
        response = await http.get("/chat")
        assert response.headers.get_list("x-trace-id") == ["app-chosen-7"]
        token = response.headers["x-feedback-token"]
        ours = token.split(".")[3]  # what the widget reads: the token names the response
        assert ours == only(kit).trace_id != "app-chosen-7"
        vote = await http.post("/feedback", headers={"X-Feedback-Token": token},
                               json={"type": "thumbs", "value": "up"})
        wrong = await http.post("/feedback", headers={"X-Feedback-Token": token},
                                json={"trace_id": "app-chosen-7", "type": "thumbs", "value": "up"})
    assert vote.status_code == 201, vote.text
    item = await kit.store.get(vote.json()["feedback_id"])
    assert item is not None
    assert item.trace_id == ours
    assert wrong.status_code == 403


# 4. an unfinished last event stays unfinished


@pytest.mark.parametrize(("chunks", "ours"), [
    ([b"data: one\n\n", b"data: partial"], False),
    ([b"data: one\n\n", b"data: partial\n"], False),
    ([b"data: one\r\n", b"data: partial\r\n"], False),
    ([b"data: one\n\n", b""], True),
    ([b"data: one\r\n\r\n"], True),
    ([b"data: one\r\r"], True),
    ([b""], True),
])
async def test_our_event_follows_only_a_finished_event(
    kit: FeedbackKit, chunks: list[bytes], ours: bool
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        for index, chunk in enumerate(chunks):
            await send({"type": "http.response.body", "body": chunk,
                        "more_body": index < len(chunks) - 1})

    sender = Sender()
    await FeedbackMiddleware(app, kit=kit)(http_scope(), Receiver(*request()), sender)
    app_bytes = b"".join(chunks)
    assert sender.body.startswith(app_bytes)
    added = sender.body[len(app_bytes):]
    assert added.startswith(b"event: feedback\n") is ours
    assert (added == b"") is (not ours)


# 5. trio


def test_under_trio_the_middleware_steps_aside_cleanly(caplog: pytest.LogCaptureFixture) -> None:
    kit = FeedbackKit.for_testing()

    async def hello(request: Request) -> Response:
        return PlainTextResponse("hi")

    app = FeedbackMiddleware(Starlette(routes=[Route("/", hello)]), kit=kit)

    async def lifespan() -> list[str]:
        sent: list[str] = []
        steps = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

        async def receive() -> dict[str, Any]:
            return next(steps)

        async def send(message: dict[str, Any]) -> None:
            sent.append(message["type"])

        await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
        return sent

    async def main() -> tuple[list[str], list[httpx.Response]]:
        started = await lifespan()
        async with client(app) as http:
            return started, [await http.get("/"), await http.post("/feedback", json={})]

    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        started, (page, feedback) = anyio.run(main, backend="trio")
        gc.collect()
    assert started == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert [str(w.message) for w in caught] == []
    assert (page.status_code, page.text) == (200, "hi")
    assert "x-trace-id" not in page.headers
    assert feedback.status_code == 404  # the app's own answer: the endpoint stepped aside too
    lines = [r.getMessage() for r in caplog.records if r.name == "feedback_asgi"]
    assert len(lines) == 1
    assert "needs asyncio" in lines[0]
    assert not kit.started


# 6. what gets a token


async def test_only_answers_get_a_token(kit: FeedbackKit, tmp_path: pathlib.Path) -> None:
    (tmp_path / "logo.txt").write_text("a file")

    async def ok(request: Request) -> Response:
        return JSONResponse({"answer": 1})

    async def moved(request: Request) -> Response:
        return RedirectResponse("/ok")

    async def unchanged(request: Request) -> Response:
        return Response(status_code=304)

    async def refused(request: Request) -> Response:
        raise HTTPException(422, "no")

    app = FeedbackMiddleware(Starlette(routes=[
        Route("/ok", ok),
        Route("/moved", moved),
        Route("/unchanged", unchanged),
        Route("/refused", refused),
        Mount("/assets", StaticFiles(directory=tmp_path)),
    ]), kit=kit)
    async with client(app) as http:
        answers = {
            "GET /ok": await http.get("/ok"),
            "GET /moved": await http.get("/moved"),
            "GET /unchanged": await http.get("/unchanged"),
            "GET /refused": await http.get("/refused"),
            "GET /missing": await http.get("/missing"),
            "POST /ok": await http.post("/ok"),
            "GET /assets/logo.txt": await http.get("/assets/logo.txt"),
        }
    statuses = {name: response.status_code for name, response in answers.items()}
    assert statuses == {"GET /ok": 200, "GET /moved": 307, "GET /unchanged": 304,
                        "GET /refused": 422, "GET /missing": 404, "POST /ok": 405,
                        "GET /assets/logo.txt": 200}
    tokened = sorted(name for name, response in answers.items()
                     if "x-feedback-token" in response.headers)
    assert tokened == ["GET /ok"]
    assert [exchange.endpoint for exchange in stored(kit)] == ["/ok"]


async def test_an_apps_own_feedback_route_clash_is_reported_once_at_startup(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def mine(request: Request) -> Response:
        return PlainTextResponse("the app's own")

    def build(**options: Any) -> Starlette:
        return Starlette(routes=[Route("/feedback", mine, methods=["POST"])],
                         middleware=[Middleware(FeedbackMiddleware,
                                                kit=FeedbackKit.for_testing(), **options)])

    async def run(app: Starlette) -> httpx.Response:
        async with client(app) as http:
            await http.get("/")
            return await http.post("/feedback", json={})

    with caplog.at_level(logging.WARNING, logger="feedback_asgi"):
        shadowed = await run(build())
    clash = [r.getMessage() for r in caplog.records if "serve_endpoint=False" in r.getMessage()]
    assert len(clash) == 1
    assert "/feedback" in clash[0]
    assert shadowed.status_code != 200  # our endpoint answered
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="feedback_asgi"):
        kept = await run(build(serve_endpoint=False))
        ours = Starlette(routes=[Mount("/feedback", routes=feedback_routes(FeedbackKit.for_testing()))],
                         middleware=[Middleware(FeedbackMiddleware, kit=FeedbackKit.for_testing())])
        await run(ours)
    assert kept.text == "the app's own"
    assert not [r for r in caplog.records if "serve_endpoint" in r.getMessage()]


ORIGIN = {"Origin": "https://app.example"}


@pytest.mark.parametrize(("allowed", "exposed"), [
    (None, False),  # no CORS at all
    (["https://other.example"], False),  # CORS refused the origin
    (["https://app.example"], True),
])
async def test_expose_headers_only_on_a_cors_response(
    kit: FeedbackKit, allowed: list[str] | None, exposed: bool
) -> None:
    async def ok(request: Request) -> Response:
        return JSONResponse({"answer": 1})

    middleware = [] if allowed is None else [Middleware(CORSMiddleware, allow_origins=allowed)]
    app = FeedbackMiddleware(Starlette(routes=[Route("/ok", ok)], middleware=middleware), kit=kit)
    async with client(app) as http:
        response = await http.get("/ok", headers=ORIGIN)
    assert response.headers["x-feedback-token"]
    assert ("access-control-expose-headers" in response.headers) is exposed
    if exposed:
        assert response.headers["access-control-expose-headers"] == "X-Trace-Id, X-Feedback-Token"


def test_the_signer_token_layout_the_widget_reads() -> None:
    # the widget takes the response id from the token's fourth part
    signer = TokenSigner([b"k" * 32])
    assert signer.sign("abc123", "").split(".")[3] == "abc123"



async def test_the_clash_check_at_startup_runs_none_of_the_apps_route_code(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class CountingRoute(Route):
        calls = 0

        def matches(self, scope: Any) -> Any:
            CountingRoute.calls += 1
            return super().matches(scope)

    async def mine(request: Request) -> Response:
        return PlainTextResponse("the app's own")

    app = Starlette(routes=[CountingRoute("/feedback/{rest:path}", mine)],
                    middleware=[Middleware(FeedbackMiddleware, kit=FeedbackKit.for_testing())])
    steps = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return next(steps)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    with caplog.at_level(logging.WARNING, logger="feedback_asgi"):
        await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert CountingRoute.calls == 0
    assert [r.getMessage() for r in caplog.records if "/feedback/{rest:path}" in r.getMessage()]
