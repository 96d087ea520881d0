"""The middleware benchmark's app: FastAPI, ``GET /json`` and ``POST /echo`` (2 KB JSON).

``BENCH_VARIANT`` picks what wraps it:

* ``bare``: nothing;
* ``feedback``: :class:`~feedback_asgi.middleware.FeedbackMiddleware` capturing every request
  (trace id, token, body tees, exchange recorded by the background writer into the in-memory
  exchange store, the default without Redis);
* ``basehttp``: a no-op ``BaseHTTPMiddleware`` (a peer for comparison; bench code only);
* ``correlation``: asgi-correlation-id's ``CorrelationIdMiddleware``;
* ``otel``: OpenTelemetry's ASGI middleware with the SDK, a batch processor and an exporter
  that drops every span.
"""

from __future__ import annotations

import os
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
    from feedback_asgi.config import FeedbackConfig
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


_VARIANTS = {"bare": None, "feedback": _feedback, "basehttp": _basehttp,
             "correlation": _correlation, "otel": _otel}
if VARIANT not in _VARIANTS:
    raise SystemExit(f"unknown BENCH_VARIANT {VARIANT!r}; one of {sorted(_VARIANTS)}")
_install = _VARIANTS[VARIANT]
if _install is not None:
    _install(app)
