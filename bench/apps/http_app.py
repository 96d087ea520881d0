"""The middleware benchmark's app: FastAPI, ``GET /json`` and ``POST /echo`` (2 KB JSON).

``BENCH_VARIANT`` picks what wraps it:

* ``bare``: nothing;
* ``feedback``: :class:`~feedback_asgi.middleware.FeedbackMiddleware` capturing every request
  (trace id, token, body tees, exchange recorded by the background writer into the in-memory
  exchange store, the default without Redis);
* ``basehttp``: a no-op ``BaseHTTPMiddleware`` (a peer for comparison; bench code only);
* ``correlation``: asgi-correlation-id's ``CorrelationIdMiddleware``;
* ``otel``: OpenTelemetry's ASGI middleware with the SDK, a batch processor and an exporter
  that drops every span;
* ``floor``: the smallest middleware doing the core of our work (a uuid4 trace id, an
  HMAC-SHA256 token, two response headers, 64 KiB body tees, a record put on an
  ``asyncio.Queue`` that a task drains): the reference row (f) of the shared bench
  anchors, measured here in the same rounds. Bench code only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import time
import uuid
from typing import Any

from fastapi import FastAPI

VARIANT = os.environ.get("BENCH_VARIANT", "bare")
SECRET = "bench-secret-key-0123456789abcdef"

app = FastAPI()


@app.get("/json")
async def get_json() -> dict[str, Any]:
    return {"status": "ok", "id": 42, "model": "demo-model-1", "items": [1, 2, 3]}


@app.post("/echo")
async def echo(payload: dict[str, Any]) -> dict[str, Any]:
    return payload


def _feedback(target: FastAPI) -> None:
    from feedback_asgi.core.config import FeedbackConfig
    from feedback_asgi.kit import FeedbackKit
    from feedback_asgi.middleware import FeedbackMiddleware

    kit = FeedbackKit(FeedbackConfig(database_url="memory://", secret_key=SECRET))
    target.add_middleware(FeedbackMiddleware, kit=kit)


def _basehttp(target: FastAPI) -> None:
    from starlette.middleware.base import BaseHTTPMiddleware

    class NoopBaseHTTP(BaseHTTPMiddleware):  # a peer only: the library never uses it
        async def dispatch(self, request: Any, call_next: Any) -> Any:
            return await call_next(request)

    target.add_middleware(NoopBaseHTTP)


def _correlation(target: FastAPI) -> None:
    from asgi_correlation_id import CorrelationIdMiddleware

    target.add_middleware(CorrelationIdMiddleware)


def _otel(target: FastAPI) -> None:
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class DropExporter(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            pass

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DropExporter()))
    target.add_middleware(OpenTelemetryMiddleware, tracer_provider=provider)


class _Floor:
    """Trace id, token, two headers, bounded tees, one queue put per request: no more."""

    limit = 64 * 1024

    def __init__(self, app: Any) -> None:
        self.app = app
        self.key = SECRET.encode()
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=10_000)
        self.task: asyncio.Task[None] | None = None

    async def _drain(self) -> None:
        while True:
            await self.queue.get()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._drain())
        trace_id = uuid.uuid4().hex
        expiry = int(time.time()) + 86_400
        signature = hmac.new(self.key, f"{trace_id}.{expiry}".encode(), hashlib.sha256)
        added = [(b"x-trace-id", trace_id.encode()),
                 (b"x-feedback-token", f"{expiry}.{signature.hexdigest()}".encode())]
        request, response = bytearray(), bytearray()
        status = 0
        limit = self.limit

        async def tee_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request" and len(request) < limit:
                request.extend(message.get("body", b"")[: limit - len(request)])
            return message

        async def tee_send(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), *added]}
            elif message["type"] == "http.response.body" and len(response) < limit:
                response.extend(message.get("body", b"")[: limit - len(response)])
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, tee_receive, tee_send)
        finally:
            record = {"trace_id": trace_id, "method": scope["method"], "path": scope["path"],
                      "status": status, "ms": (time.perf_counter() - started) * 1000,
                      "request": request, "response": response}
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.put_nowait(record)


def _floor(target: FastAPI) -> None:
    target.add_middleware(_Floor)


_VARIANTS = {"bare": None, "feedback": _feedback, "basehttp": _basehttp,
             "correlation": _correlation, "otel": _otel, "floor": _floor}
if VARIANT not in _VARIANTS:
    raise SystemExit(f"unknown BENCH_VARIANT {VARIANT!r}; one of {sorted(_VARIANTS)}")
_install = _VARIANTS[VARIANT]
if _install is not None:
    _install(app)
