"""FastAPI adapter: ``feedback_router(kit=None)`` and ``Depends(get_feedback_context)``.

::

    app = FastAPI()
    app.add_middleware(FeedbackMiddleware, kit=kit, serve_endpoint=False)
    app.include_router(feedback_router(kit), prefix="/feedback")

The router's handlers hand the raw request to the neutral endpoint
(:func:`feedback_asgi.web.endpoint.respond`): FastAPI never parses the body, so every answer,
errors included, is the same JSON as the middleware's. The Pydantic models in
:mod:`feedback_asgi.integrations.schemas` only document the routes in OpenAPI.
"""

from __future__ import annotations

try:
    from fastapi import APIRouter, Request, Response
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "feedback_asgi.integrations.fastapi needs FastAPI: pip install 'feedback-asgi[fastapi]'"
    ) from exc

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from feedback_asgi.context import FeedbackContext
from feedback_asgi.integrations.schemas import (
    ErrorResponse,
    FeedbackAccepted,
    FeedbackEdit,
    FeedbackEdited,
    FeedbackPage,
    FeedbackReplace,
    FeedbackWithHistory,
    HealthReport,
    StatsResponse,
    StoredFeedback,
    TimeseriesResponse,
    request_body_openapi,
)
from feedback_asgi.web import export as export_route
from feedback_asgi.web.endpoint import FeedbackEndpoint, respond

if TYPE_CHECKING:
    from feedback_asgi.kit import FeedbackKit

__all__ = ["feedback_router", "get_feedback_context"]

_DESCRIPTIONS = {
    400: "Malformed JSON, invalid UTF-8, duplicate keys, NaN/Infinity, nesting too deep",
    401: "Feedback token missing, malformed, expired or forged",
    403: "Token issued for another trace or session, or Origin not allowed",
    413: "Body larger than max_payload_bytes",
    415: "Content-Type is not application/json",
    422: "The body does not fit any accepted shape, the value is invalid for its kind, or "
         "metadata names a key the server sets (submitter, source, edited_by, client_...)",
    429: "Too many posts from this client (rate_limit_per_minute); retry after Retry-After",
    503: "Storage unavailable; retry after Retry-After seconds",
    404: "No feedback with this id (an item the token did not submit answers the same)",
    409: "The item was retracted, or changed meanwhile",
}
_READ_ERRORS = (401, 403, 422, 503)
_EXPORT_INVALID = ("An option is unknown or invalid: an unknown kind or format, a filter no item "
                   "can match, or a time outside 1970-01-01..9999-01-01 UTC (or since not before "
                   "until); fields names it")
_QUERY_INVALID = ("A query parameter is unknown, repeated, not UTF-8 or invalid: a filter no item "
                  "can match (empty, over 255 characters, NUL), a forged cursor, or a time outside "
                  "1970-01-01..9999-01-01 UTC; fields names it")
_RIGHTS = ("Read/admin rights: Authorization: Bearer <FEEDBACK_ASGI_ADMIN_TOKEN>, or the kit's "
           "authorizer. 401 without them, 403 with a submitter's feedback token.")


def _query(*names: str) -> list[dict[str, Any]]:
    described = {
        "window": "24h, 7d, 30d, 90d, 90m... (default 7d), ending at until", "since": "ISO 8601",
        "until": "ISO 8601 (default now)", "by": "model, provider, intent, project or endpoint",
        "unique": "true: distinct users and sessions (counted from the rows)",
        "interval": "hour or day (default day)", "type": "feedback kind", "session": "session id",
        "user": "user id", "trace": "trace id (the response id the server minted)",
        "request_id": "the client's id of the request (X-Request-ID / X-Trace-Id it sent)",
        "otel_trace_id": "the OpenTelemetry trace the request belonged to",
        "limit": "1-500 (default 50)",
        "cursor": "next_cursor of the previous page",
    }
    return [{"name": name, "in": "query", "required": False,
             "schema": _QUERY_SCHEMAS.get(name, _FILTER_SCHEMA),
             "description": described.get(name, f"only items whose {name} is this")}
            for name in names]


_FILTER_SCHEMA: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 255,
                                  "pattern": "^[^\\x00]*$"}
_QUERY_SCHEMAS: dict[str, dict[str, Any]] = {
    "since": {"type": "string", "format": "date-time"},
    "until": {"type": "string", "format": "date-time"},
    "limit": {"type": "integer", "minimum": 1, "maximum": 500},
    "unique": {"type": "string", "enum": ["true", "false", "1", "0"]},
    "interval": {"type": "string", "enum": ["hour", "day"]},
    "by": {"type": "string", "enum": ["model", "provider", "intent", "project", "endpoint"]},
    "window": {"type": "string", "pattern": "^[1-9][0-9]{0,5}[mhdw]$"},
    "type": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,31}$"},
    "cursor": {"type": "string", "minLength": 1, "maxLength": 512},
}


_OWNER_TOKEN = {"name": "X-Feedback-Token", "in": "header", "required": False,
                "schema": {"type": "string"},
                "description": "The token that submitted the item (its submitter needs no rights)"}


def _read_routes(router: APIRouter, endpoint: FeedbackEndpoint) -> None:
    """The documented read/admin routes (each hands the request to the endpoint)."""
    stats_filters = ("window", "since", "until", "by", "model", "provider", "intent",
                     "project", "endpoint", "request_id", "otel_trace_id", "unique")

    @router.get("/stats", response_model=None, summary="Stats per group", description=_RIGHTS,
                responses={200: {"model": StatsResponse},
                           **_errors(*_READ_ERRORS, invalid=_QUERY_INVALID)},
                openapi_extra={"parameters": _query(*stats_filters)})
    async def feedback_stats(request: Request) -> Response:
        return await _answer(endpoint, request, "/stats")

    @router.get("/stats/timeseries", response_model=None, summary="Stats per hour or day",
                description=_RIGHTS,
                responses={200: {"model": TimeseriesResponse},
                           **_errors(*_READ_ERRORS, invalid=_QUERY_INVALID)},
                openapi_extra={"parameters": _query(*stats_filters, "interval")})
    async def feedback_timeseries(request: Request) -> Response:
        return await _answer(endpoint, request, "/stats/timeseries")

    @router.get("", response_model=None, summary="List feedback (keyset pagination)",
                description=_RIGHTS,
                responses={200: {"model": FeedbackPage},
                           **_errors(*_READ_ERRORS, invalid=_QUERY_INVALID)},
                openapi_extra={"parameters": _query("type", "model", "session", "user", "trace",
                                                    "request_id", "otel_trace_id", "since",
                                                    "until", "limit", "cursor")})
    async def feedback_list(request: Request) -> Response:
        return await _answer(endpoint, request, "/")

    item_errors = _errors(401, 403, 404, 409, 422, 503)
    edit_errors = _errors(400, 401, 403, 404, 409, 413, 415, 422, 503)

    @router.get("/{feedback_id}", response_model=None, summary="One item with its history",
                responses={200: {"model": FeedbackWithHistory}, **item_errors},
                openapi_extra={"parameters": [_OWNER_TOKEN]})
    async def feedback_item(feedback_id: str, request: Request) -> Response:
        return await _answer(endpoint, request, f"/{feedback_id}")

    for method, summary, shape in (
        ("PUT", "Replace an item's value/comment (a new version)", FeedbackReplace),
        ("PATCH", "Change some fields of an item (a new version)", FeedbackEdit),
    ):
        edit_body = {"required": True, "content": {"application/json": {
            "schema": shape.model_json_schema()}}}

        @router.api_route("/{feedback_id}", methods=[method], response_model=None,
                          summary=summary, name=f"feedback_{method.lower()}",
                          responses={200: {"model": FeedbackEdited}, **edit_errors},
                          openapi_extra={"parameters": [_OWNER_TOKEN], "requestBody": edit_body})
        async def feedback_edit(feedback_id: str, request: Request) -> Response:
            return await _answer(endpoint, request, f"/{feedback_id}")

    @router.delete("/{feedback_id}", status_code=204, response_model=None,
                   summary="Retract an item (a retraction row)",
                   responses={204: {"description": "Retracted"}, **item_errors},
                   openapi_extra={"parameters": [_OWNER_TOKEN]})
    async def feedback_retract(feedback_id: str, request: Request) -> Response:
        return await _answer(endpoint, request, f"/{feedback_id}")


_OTHER_METHODS = ["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "QUERY"]
"""Every method but POST: the endpoint answers them (JSON 405, not FastAPI's own)."""


def _errors(*statuses: int, invalid: str | None = None) -> dict[int | str, dict[str, Any]]:
    """The documented error answers; ``invalid`` describes a route's own 422."""
    return {
        status: {"model": ErrorResponse, "description": invalid if status == 422 and invalid
                 else _DESCRIPTIONS[status]}
        for status in statuses
    }


class _ReplyResponse(Response):
    """A Starlette response carrying exactly the endpoint's bytes and headers."""

    def __init__(self, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        super().__init__(status_code=status)
        self.body = body
        self.raw_headers = headers


async def _answer(endpoint: FeedbackEndpoint, request: Request, path: str) -> Response:
    if export_route.owns(path):  # streamed: the same answers as the other surfaces
        return _ExportResponse(endpoint, path)
    reply = await respond(endpoint.kit, request.scope, request.receive, path)
    if reply is None:  # the client left before its body arrived; nobody reads this
        return Response(status_code=400)
    return _ReplyResponse(reply.status, reply.body, reply.header_list())


class _ExportResponse(Response):
    """Streams the export straight from the neutral route (no buffering)."""

    def __init__(self, endpoint: FeedbackEndpoint, path: str) -> None:
        super().__init__()
        self._endpoint = endpoint
        self._path = path

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await export_route.serve_export(self._endpoint.kit, scope, receive, send, self._path)


def _export_route(router: APIRouter, endpoint: FeedbackEndpoint) -> None:
    """``POST /export`` and ``POST /export/{kind}``: NDJSON (admin only)."""
    described = {"description": "Training data, one JSON object per line",
                 "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}

    @router.post("/export", response_model=None, summary="Export training data (NDJSON)",
                 description=_RIGHTS + " Options as query parameters or a JSON body: kind, "
                 "format, since, until, model, intent, project, include_neutral, weights.",
                 responses={200: described,
                            **_errors(401, 403, 422, 503, invalid=_EXPORT_INVALID)})
    async def feedback_export(request: Request) -> Response:
        return _ExportResponse(endpoint, "/export")

    @router.post("/export/{kind}", response_model=None, summary="Export one kind (NDJSON)",
                 description=_RIGHTS,
                 responses={200: described, **_errors(401, 403, 422, 503, invalid=_EXPORT_INVALID)})
    async def feedback_export_kind(kind: str, request: Request) -> Response:
        return _ExportResponse(endpoint, f"/export/{kind}")


async def get_feedback_context(request: Request) -> AsyncIterator[FeedbackContext]:
    """A dependency: a :class:`FeedbackContext` around the handler, named after its route.

    ::

        @app.post("/chat")
        async def chat(body: Ask, ctx: FeedbackContext = Depends(get_feedback_context)):
            ctx.set_input(body.question)
            ctx.set_result(answer := await model(body.question))
            return {"answer": answer, "trace_id": ctx.trace_id}

    Inside a request captured by the middleware it enriches that request's exchange;
    otherwise it records an exchange of its own with the default kit.
    """
    route = request.scope.get("route")
    operation = getattr(route, "name", None) or request.scope.get("path", "request")
    async with FeedbackContext(operation=str(operation)) as context:
        yield context


def feedback_router(kit: FeedbackKit | None = None) -> APIRouter:
    """An ``APIRouter`` with the feedback routes; include it with ``prefix="/feedback"``.

    Without ``kit`` the routes use the process's default kit, resolved on first request.
    """
    endpoint = FeedbackEndpoint(kit, prefix="")
    router = APIRouter(tags=["feedback"])

    @router.post(
        "",
        status_code=201,
        response_model=None,
        summary="Submit feedback on a response",
        responses={
            201: {"model": FeedbackAccepted, "description": "Stored and committed"},
            **_errors(400, 401, 403, 413, 415, 422, 429, 503),
        },
        openapi_extra={
            "requestBody": request_body_openapi(),
            "parameters": [
                {"name": "X-Feedback-Token", "in": "header", "required": False,
                 "schema": {"type": "string"},
                 "description": "The token from the rated response's X-Feedback-Token header"},
                {"name": "Idempotency-Key", "in": "header", "required": False,
                 "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"},
                 "description": "Retries with the same key get the first answer "
                                "(1-255 visible ASCII characters)"},
            ],
        },
    )
    async def submit_feedback(request: Request) -> Response:
        return await _answer(endpoint, request, "/")

    @router.get(
        "/sessions/{session_id}",
        response_model=None,
        summary="The caller's own feedback in one session",
        responses={
            200: {"model": list[StoredFeedback], "description": "Newest first"},
            **_errors(401, 403, 503),
        },
        openapi_extra={
            "parameters": [
                {"name": "X-Feedback-Token", "in": "header", "required": False,
                 "schema": {"type": "string"},
                 "description": "A token issued to this session"},
            ]
        },
    )
    async def session_feedback(session_id: str, request: Request) -> Response:
        return await _answer(endpoint, request, f"/sessions/{session_id}")

    @router.get(
        "/health",
        response_model=None,
        summary="Health of the feedback storage and exchange writer",
        responses={
            200: {"model": HealthReport, "description": "Healthy"},
            503: {"model": HealthReport, "description": "A part is down"},
        },
    )
    async def feedback_health(request: Request) -> Response:
        return await _answer(endpoint, request, "/health")

    _read_routes(router, endpoint)

    _export_route(router, endpoint)

    # JSON 404/405 (and CORS preflights) for everything else below the prefix
    @router.api_route("", methods=_OTHER_METHODS, include_in_schema=False)
    async def feedback_root_other(request: Request) -> Response:
        return await _answer(endpoint, request, "/")

    @router.api_route("/{path:path}", methods=["POST", *_OTHER_METHODS], include_in_schema=False)
    async def feedback_other(path: str, request: Request) -> Response:
        return await _answer(endpoint, request, "/" + path)

    return router
