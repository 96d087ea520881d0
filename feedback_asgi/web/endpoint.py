"""The feedback routes as one framework-neutral, pure ASGI app: ``create_feedback_endpoint()``.

Routes, relative to where the app is served (``config.path`` under the middleware, the
mount point under Starlette's ``Mount`` or FastAPI's ``include_router``):

* ``POST /``: store one feedback item (see :mod:`feedback_asgi.web.submission` for the shapes);
  ``201 {"status": "success", "feedback_id"}`` once it is committed.
* ``GET /sessions/{session_id}``: the caller's own session feedback, a JSON list.
* ``GET /health``: ``kit.health()``, 200 when healthy, else 503.
* ``GET /widget.js``: the browser widget (:mod:`feedback_asgi.web.assets`: ETag, 304).
* ``/dashboard`` (and its sign-in page): the web dashboard (:mod:`feedback_asgi.dashboard`).
* ``POST /export``: training data streamed as NDJSON (:mod:`feedback_asgi.web.export`).
* ``OPTIONS`` on any of them: CORS preflight.

Every other answer is the JSON error ``{"error": {"code", "message", "fields"}}``; nothing
here answers 500. The Starlette and FastAPI adapters call :func:`respond`, so every adapter
sends exactly the same JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from feedback_asgi.capture.exchange import session_id_from_scope, session_subject
from feedback_asgi.core.exceptions import (
    FeedbackError,
    FeedbackValidationError,
    StorageUnavailableError,
)
from feedback_asgi.core.records import Exchange, FeedbackItem
from feedback_asgi.core.result import Err, Ok, Result
from feedback_asgi.core.tokens import TokenClaims
from feedback_asgi.dashboard import routes as dashboard
from feedback_asgi.feedback.votes import (
    IDEMPOTENCY_METADATA_KEY,
    SUBMITTER_METADATA_KEY,
    fingerprint,
    keyed_id,
    save_vote,
    valid_idempotency_key,
    vote_slot_id,
)
from feedback_asgi.web import export as export_route
from feedback_asgi.web import items as read_routes
from feedback_asgi.web.access import (
    SERVER_SUBMITTER,
    bearer_is_admin,
    is_admin,
    submitter_of,
    verified_claims,
)
from feedback_asgi.web.assets import WIDGET_PATH, asset_reply
from feedback_asgi.web.rate_limit import check_rate_limit
from feedback_asgi.web.submission import CLIENT_CONTEXT_PREFIX, Submission, parse_submission
from feedback_asgi.web.wire import (
    ClientDisconnected,
    HttpError,
    Reply,
    header,
    id_can_exist,
    json_reply,
    parse_json,
    read_body,
    require_json_content_type,
)

if TYPE_CHECKING:
    from feedback_asgi.kit import FeedbackKit

__all__ = ["FeedbackEndpoint", "create_feedback_endpoint", "respond", "route_path"]

logger = logging.getLogger("feedback_asgi")

RETRY_AFTER_SECONDS = 5
STORAGE_GRACE_SECONDS = 1.0
"""A post's storage work (rate limit, exchange lookup, save) must be done within
``connect_timeout_seconds`` plus this from its arrival, else it is answered 503."""
EXCHANGE_SETTLE_SECONDS = 2.0
"""How long after its token was signed a missing exchange is still awaited (with Redis,
another worker's writer may not have stored it yet)."""
_SETTLE_POLL_FIRST_SECONDS = 0.05
_SETTLE_POLL_MAX_SECONDS = 0.4
SESSION_LIST_LIMIT = 500
_ALLOWED_HEADERS = b"content-type, x-feedback-token, idempotency-key, authorization"
_ROUTES: dict[str, tuple[str, ...]] = {
    "/": ("GET", "HEAD", "POST", "OPTIONS"),  # GET and HEAD: the list (read_routes)
    "/health": ("GET", "HEAD", "OPTIONS"),
    "/sessions": ("GET", "HEAD", "OPTIONS"),
    WIDGET_PATH: ("GET", "HEAD", "OPTIONS"),
}


_RETRY_AFTER = ((b"retry-after", str(RETRY_AFTER_SECONDS).encode()),)


def _unavailable(message: str) -> HttpError:
    return HttpError(503, "storage_unavailable", message, headers=_RETRY_AFTER)


def _error_status(error: FeedbackError) -> HttpError:
    if isinstance(error, FeedbackValidationError):
        return HttpError.from_feedback_error(422, error)
    if isinstance(error, StorageUnavailableError):
        return _unavailable(error.message)
    # a hook or processor failed for a reason other than bad input: retryable, not a 500
    return HttpError(503, error.code, error.message, headers=_RETRY_AFTER)


# routing


def route_path(scope: Mapping[str, Any], prefix: str | None) -> str:
    """The path below the endpoint: without ``root_path`` (a mount) and then ``prefix``."""
    path: str = scope.get("path", "/")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    if prefix and prefix != "/" and (
        path == prefix or path.startswith(prefix + "/")
    ):
        path = path[len(prefix) :]
    return path.rstrip("/") or "/"


def _route_key(path: str) -> tuple[str, str | None] | None:
    if path in ("/", "/health", WIDGET_PATH):
        return path, None
    parts = path.split("/")
    if len(parts) == 3 and parts[1] == "sessions" and parts[2]:
        return "/sessions", parts[2]
    return None


# CORS and origins


def _origin_allowed(kit: FeedbackKit, origin: str) -> bool:
    allowed = kit.config.allowed_origins
    return not allowed or origin in allowed or "*" in allowed


def _cors_headers(kit: FeedbackKit, scope: Mapping[str, Any]) -> tuple[tuple[bytes, bytes], ...]:
    origin = header(scope, b"origin")
    if origin is None or not _origin_allowed(kit, origin):
        return ()
    return (
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"vary", b"Origin"),
    )


def _preflight(kit: FeedbackKit, scope: Mapping[str, Any], methods: tuple[str, ...]) -> Reply:
    origin = header(scope, b"origin")
    allow = ", ".join(methods).encode()
    if origin is None:
        return Reply(204, b"", ((b"allow", allow),))
    if not _origin_allowed(kit, origin):
        raise HttpError(403, "origin_not_allowed", "this origin may not send feedback")
    return Reply(
        204,
        b"",
        (
            (b"access-control-allow-methods", allow),
            (b"access-control-allow-headers", _ALLOWED_HEADERS),
            (b"access-control-max-age", b"600"),
        ),
    )


# POST /


def _idempotency_key(scope: Mapping[str, Any]) -> str | None:
    key = header(scope, b"idempotency-key")
    if key is None:
        return None
    if not valid_idempotency_key(key):
        raise HttpError(
            400,
            "invalid_request",
            "Idempotency-Key must be 1-255 visible ASCII characters",
            {"Idempotency-Key": "invalid"},
        )
    return key


async def _find_exchange(
    kit: FeedbackKit, trace_id: str, *, force: bool = False
) -> Exchange | None:
    try:
        return await kit.find_exchange(trace_id, force=force)
    except Exception:
        # Redis down or the like: the feedback is still worth keeping, without context
        logger.warning("exchange lookup failed for trace %s", trace_id, exc_info=True)
        return None


async def _rated_exchange(
    kit: FeedbackKit, claims: TokenClaims, settle_by: float
) -> dict[str, Any] | None:
    """The context of the exchange ``claims`` rate; ``settle_by`` (``time.monotonic()``) is
    when this request stops waiting for one another worker may still be writing."""
    exchange = await _find_exchange(kit, claims.trace_id)
    if exchange is None and kit.config.redis_url is not None and getattr(
        kit.exchanges, "worth_waiting", True
    ):
        # Captured by another worker moments ago, its exchange may still be in that
        # worker's writer queue: wait for it a little, only while the token is fresh,
        # asking Redis even during its pause after a timeout (a busy event loop is no
        # outage; a refused connection is, and then nothing is awaited).
        # expiry = whole seconds at signing + TTL: signed at most this late
        signed_by = claims.expires_at - kit.config.token_ttl_seconds + 1
        # Lookups grow apart (0.05 s doubling to 0.4 s: about 8 in 2 s): many posts waiting
        # at once must not crowd out of the Redis pool the writes they are waiting for.
        # ... and within the request's own budget: a silent Redis must not hold the post
        deadline = min(min(signed_by, time.time()) + EXCHANGE_SETTLE_SECONDS,
                       time.time() + settle_by - time.monotonic())
        pause = _SETTLE_POLL_FIRST_SECONDS
        while exchange is None and (left := deadline - time.time()) > 0:
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, _SETTLE_POLL_MAX_SECONDS)
            exchange = await _find_exchange(kit, claims.trace_id, force=True)
    if exchange is None:
        return None
    context = exchange.correlation()
    if exchange.operation is not None:
        context["operation"] = exchange.operation
    return context


def _metadata(submission: Submission) -> dict[str, Any]:
    # validated and redacted by the collector, as on every path; reserved keys refused before
    metadata = dict(submission.metadata)
    metadata["source"] = "http"
    return metadata


@contextlib.asynccontextmanager
async def _by(when: float) -> AsyncIterator[None]:
    """Storage work that must be done by ``when`` (the loop's clock), else the 503."""
    try:
        async with asyncio.timeout_at(when):
            yield
    except TimeoutError:
        raise _unavailable("feedback storage did not answer in time") from None


async def _submit(kit: FeedbackKit, scope: Mapping[str, Any], receive: Any) -> Reply:
    config = kit.config
    origin = header(scope, b"origin")
    if origin is not None and not _origin_allowed(kit, origin):
        raise HttpError(403, "origin_not_allowed", "this origin may not send feedback")
    # One budget from the request's arrival for everything storage does for it (each store
    # call has its own deadline too): posts never queue behind a silent server past it.
    arrived = asyncio.get_running_loop().time()
    give_up_at = arrived + config.connect_timeout_seconds + STORAGE_GRACE_SECONDS
    async with _by(give_up_at):
        await check_rate_limit(kit, scope)
    require_json_content_type(scope)
    key = _idempotency_key(scope)
    body = await read_body(scope, receive, config.max_payload_bytes)
    try:
        submission = parse_submission(parse_json(body), max_text_length=config.max_text_length)
    except FeedbackValidationError as invalid:
        raise HttpError.from_feedback_error(422, invalid) from None
    token = header(scope, b"x-feedback-token") or submission.token
    signer = kit.signer
    trusted = token is None and submission.trace_id is not None and await is_admin(kit, scope)
    if trusted:
        # an authenticated server caller (admin bearer or authorizer) needs no token
        claims = TokenClaims(trace_id=str(submission.trace_id), subject_digest="",
                             expires_at=int(time.time()) + kit.config.token_ttl_seconds,
                             key_id=signer.signing_key_id)
        submitter = SERVER_SUBMITTER
    else:
        claims = verified_claims(kit, token, submission.trace_id)
        submitter = submitter_of(claims)
    trace_id = claims.trace_id
    metadata = _metadata(submission)
    metadata[SUBMITTER_METADATA_KEY] = submitter
    key_fingerprint = fingerprint(key) if key is not None else None
    if key_fingerprint is not None:
        metadata[IDEMPOTENCY_METADATA_KEY] = key_fingerprint
    if trusted:
        context = dict(submission.context)
    else:
        # a token holder's word on what was rated stays the client's: metadata, not a group
        context = {}
        for name, value in submission.context.items():
            metadata[CLIENT_CONTEXT_PREFIX + name] = value
    settle_by = time.monotonic() + config.connect_timeout_seconds / 2
    async with _by(give_up_at):
        rated = await _rated_exchange(kit, claims, settle_by)
    if rated is not None:
        context.update(rated)
    context["trace_id"] = trace_id
    kind = submission.kind

    async def save(item_id: str, supersedes: str | None) -> Result[FeedbackItem, FeedbackError]:
        return await kit.collector.collect(
            kind,
            submission.value,
            context,
            metadata,
            comment=submission.comment,
            supersedes=supersedes,
            item_id=item_id,
        )

    id_key = signer.id_key(claims.key_id)
    async with _by(give_up_at):
        outcome = await save_vote(
            kit.store,
            save,
            slot_id=vote_slot_id(trace_id, kind, submitter, key=id_key),
            request_id=(
                keyed_id(trace_id, submitter, key_fingerprint, key=id_key)
                if key_fingerprint else None
            ),
            key_fingerprint=key_fingerprint,
        )
    match outcome:
        case Ok(saved):
            extra = ((b"idempotent-replayed", b"true"),) if saved.replayed else ()
            return json_reply(201, {"status": "success", "feedback_id": saved.feedback_id}, extra)
        case Err(error):
            raise _error_status(error)
    raise AssertionError("unreachable")  # pragma: no cover


# GET /sessions/{session_id}


async def _session_feedback(
    kit: FeedbackKit, scope: Mapping[str, Any], session_id: str
) -> Reply:
    if not bearer_is_admin(kit, scope):
        token = header(scope, b"x-feedback-token")
        if token is not None:
            claims = verified_claims(kit, token)
            if not kit.signer.issued_to(claims, session_subject(session_id)):
                raise HttpError(403, "forbidden", "this token was not issued to that session")
        elif session_id_from_scope(scope) != session_id:
            raise HttpError(
                401, "token_missing", "a feedback token of this session is required"
            )
    if not id_can_exist(session_id):  # no session can have it: answered without the store
        return json_reply(200, [])
    try:
        items = await kit.store.find_by_session(session_id)
    except StorageUnavailableError as error:
        raise _unavailable(error.message) from None
    return json_reply(200, [item.to_dict() for item in items[:SESSION_LIST_LIMIT]])


# GET /health


async def _health(kit: FeedbackKit, scope: Mapping[str, Any]) -> Reply:
    report = await kit.health()
    status = 200 if report.healthy else 503
    if await is_admin(kit, scope):
        return json_reply(status, report.to_dict())
    # the public answer: one state per part, no error strings, counters or backends
    parts = {"database": bool(report.get("database", {}).get("reachable"))}
    if report.get("redis", {}).get("configured", True):
        parts["redis"] = bool(report.get("redis", {}).get("reachable"))
    return json_reply(status, {
        "status": "ok" if report.healthy else "unavailable",
        **{name: "ok" if up else "unavailable" for name, up in parts.items()},
    })


# dispatch


async def _dispatch(
    kit: FeedbackKit, scope: Mapping[str, Any], receive: Any, path: str
) -> Reply:
    clean = path.rstrip("/") or "/"
    if dashboard.owns(clean):
        return await dashboard.dispatch(kit, scope, receive, clean)
    if read_routes.owns(clean, scope.get("method", "GET")):
        if scope.get("method") == "OPTIONS":
            return _preflight(kit, scope, read_routes.allowed_methods(clean))
        return await read_routes.dispatch(kit, scope, receive, clean)
    route = _route_key(clean)
    if route is None:
        raise HttpError(404, "not_found", "no such feedback route")
    name, session_id = route
    methods = _ROUTES[name]
    method = scope.get("method", "GET")
    if method not in methods:
        raise HttpError(
            405,
            "method_not_allowed",
            f"{method} is not allowed here",
            headers=((b"allow", ", ".join(methods).encode()),),
        )
    if method == "OPTIONS":
        return _preflight(kit, scope, methods)
    if name == WIDGET_PATH:
        return asset_reply(scope, name)
    await kit.ensure_started()
    if name == "/":
        return await _submit(kit, scope, receive)
    if name == "/health":
        return await _health(kit, scope)
    assert session_id is not None
    return await _session_feedback(kit, scope, session_id)


async def respond(
    kit: FeedbackKit, scope: Mapping[str, Any], receive: Any, path: str
) -> Reply | None:
    """The reply to one request for the feedback route ``path`` (``"/"``, ``"/health"``...).

    ``None`` when the client disconnected before its body arrived (nothing to send).
    Never raises: unexpected failures are logged and answered 503.
    """
    try:
        reply = await _dispatch(kit, scope, receive, path)
    except HttpError as error:
        reply = error.reply()
    except ClientDisconnected:
        return None
    except StorageUnavailableError as error:
        reply = _unavailable(error.message).reply()
    except Exception:
        logger.exception("feedback endpoint failed on %s %s", scope.get("method"), path)
        reply = _unavailable("feedback is temporarily unavailable").reply()
    return reply.with_headers(_cors_headers(kit, scope))


class FeedbackEndpoint:
    """The pure ASGI app behind ``create_feedback_endpoint()``."""

    __slots__ = ("_kit", "prefix")

    def __init__(self, kit: FeedbackKit | None = None, *, prefix: str | None = None) -> None:
        self._kit = kit
        self.prefix = prefix
        """Path prefix stripped after ``root_path``; ``None`` means the kit's ``config.path``."""

    @property
    def kit(self) -> FeedbackKit:
        """The kit given, else the process's default kit (built on first use)."""
        if self._kit is None:
            from feedback_asgi.kit import get_default_kit

            self._kit = get_default_kit()
        return self._kit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Serve one ASGI connection."""
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        kit = self.kit
        prefix = self.prefix if self.prefix is not None else kit.config.path
        path = route_path(scope, prefix)
        if export_route.owns(path):  # streamed, so not a Reply
            await export_route.serve_export(kit, scope, receive, send, path)
            return
        reply = await respond(kit, scope, receive, path)
        if reply is not None:
            await reply.send(send, head=scope.get("method") == "HEAD")


def create_feedback_endpoint(kit: FeedbackKit | None = None) -> FeedbackEndpoint:
    """The ASGI app serving the feedback routes (the seed API's name).

    Without ``kit`` it uses the process's default kit, the same one a
    ``FeedbackMiddleware`` without a kit uses. Serve it with the middleware (the default,
    at ``config.path``), under ``Mount(path, app=...)``, or through the adapters.
    """
    return FeedbackEndpoint(kit)
