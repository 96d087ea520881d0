"""Apps that serve the feedback routes in each supported way, and a raw ASGI driver.

Every surface serves the routes below ``/feedback``:

* ``endpoint``: ``create_feedback_endpoint(kit)`` as the whole app;
* ``middleware``: a Starlette app wrapped in ``FeedbackMiddleware`` (which serves them);
* ``starlette``: ``Mount("/feedback", routes=feedback_routes(kit))``;
* ``fastapi``: ``app.include_router(feedback_router(kit), prefix="/feedback")``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from feedback_asgi.integrations.fastapi import feedback_router
from feedback_asgi.integrations.starlette import feedback_routes
from feedback_asgi.kit import FeedbackKit
from feedback_asgi.middleware import FeedbackMiddleware
from feedback_asgi.web.endpoint import create_feedback_endpoint

SURFACES = ("endpoint", "middleware", "starlette", "fastapi")


@dataclass
class Surface:
    """An app and the path its feedback POST goes to."""

    name: str
    app: Any
    submit: str = "/feedback"


async def hello(request: Request) -> JSONResponse:
    """The host app's own route."""
    return JSONResponse({"hello": "world"})


def build(name: str, kit: FeedbackKit) -> Surface:
    """The app for surface ``name`` using ``kit``."""
    if name == "endpoint":
        return Surface(name, create_feedback_endpoint(kit))
    if name == "middleware":
        return Surface(name, FeedbackMiddleware(Starlette(routes=[Route("/hello", hello)]), kit=kit))
    if name == "starlette":
        app = Starlette(routes=[Route("/hello", hello), Mount("/feedback", routes=feedback_routes(kit))])
        # Mount matches below its path: POST /feedback would be redirected to /feedback/
        return Surface(name, app, submit="/feedback/")
    if name == "fastapi":
        fastapi_app = FastAPI()
        fastapi_app.include_router(feedback_router(kit), prefix="/feedback")
        return Surface(name, fastapi_app)
    raise ValueError(name)


def client(app: Any) -> httpx.AsyncClient:
    """An in-process client for ``app``."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The ``error`` object of a JSON error response (asserting the documented shape)."""
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.content)
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert isinstance(body["error"]["message"], str)
    assert isinstance(body["error"]["fields"], dict)
    return dict(body["error"])


@dataclass
class RawResult:
    """What a raw ASGI call produced."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    receive_calls: int
    bytes_pulled: int

    def json(self) -> Any:
        return json.loads(self.body)


async def call_raw(
    app: Any,
    method: str,
    path: str,
    headers: Iterable[tuple[bytes, bytes]],
    chunks: Iterator[bytes],
) -> RawResult:
    """Drive ``app`` with one HTTP request whose body comes from ``chunks`` lazily.

    Counts the ``receive`` calls and the body bytes the app pulled; after the last chunk,
    ``receive`` fails as a real server would hang.
    """
    pending = iter(chunks)
    lookahead: list[bytes] = []
    counters = {"calls": 0, "bytes": 0}
    sent: list[dict[str, Any]] = []

    def next_chunk() -> bytes | None:
        if lookahead:
            return lookahead.pop()
        return next(pending, None)

    async def receive() -> dict[str, Any]:
        counters["calls"] += 1
        chunk = next_chunk()
        if chunk is None:
            raise AssertionError("receive() called after the whole body: would hang")
        after = next_chunk()
        if after is not None:
            lookahead.append(after)
        counters["bytes"] += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": after is not None}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return RawResult(start["status"], list(start["headers"]), body, counters["calls"],
                     counters["bytes"])
