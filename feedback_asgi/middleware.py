"""``FeedbackMiddleware``: the pure ASGI middleware that captures exchanges and issues tokens.

Per captured request it creates one
:class:`~feedback_asgi.capture.exchange.ExchangeCapture`, binds it in a ContextVar and under
one key of the caller's own scope (removed when the app returns, so what the app's router
writes there reaches middleware outside ours), wraps ``receive`` and ``send`` to tee bounded
copies of the bodies (every message is forwarded unchanged, at once, one for one). When the
response is an answer (:func:`~feedback_asgi.capture.exchange.is_answer`, not a static file)
it adds ``X-Trace-Id`` (unless the app set its own) and ``X-Feedback-Token``
(and, for a ``text/event-stream`` that ends between events, one final ``event: feedback``),
and hands the capture to the exchange writer when the last body message has been sent; any
other response passes untouched and nothing is stored. App exceptions propagate unchanged;
the middleware's own failures are counted and never reach the client. Storage needs asyncio:
under another event loop (trio) the middleware steps aside and the app runs alone.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING, Any, cast

from feedback_asgi.capture.exchange import (
    CAPTURE_SCOPE_KEY,
    CaptureSettings,
    ExchangeCapture,
    bind_capture,
    correlation_ids,
    identity_from_scope,
    is_answer,
    merge_expose_headers,
    new_trace_id,
    session_digest,
    trusted_identity,
    unbind_capture,
)

if TYPE_CHECKING:
    from feedback_asgi.feedback.collector import FeedbackCollector
    from feedback_asgi.feedback.processors import FeedbackProcessorRegistry
    from feedback_asgi.kit import FeedbackKit

__all__ = [
    "ASGIApp",
    "FeedbackMiddleware",
    "Message",
    "Receive",
    "Scope",
    "Send",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger("feedback_asgi")

TRACE_HEADER = b"x-trace-id"
TOKEN_HEADER = b"x-feedback-token"

# request headers we look at, by lowercase name (plus trusted identity headers, if configured)
_WANTED_HEADERS = frozenset({
    b"x-trace-id", b"x-request-id", b"traceparent", b"cookie", b"content-type",
    b"content-encoding",
})
# response headers we look at; the ones in _RESPONSE_REBUILD make us rebuild the list
_RESPONSE_REBUILD = frozenset({TRACE_HEADER, TOKEN_HEADER, b"access-control-allow-origin"})
_RESPONSE_WATCH = _RESPONSE_REBUILD | {b"content-type", b"content-encoding", b"content-length"}
_FILE_MESSAGES = frozenset({"http.response.pathsend", "http.response.zerocopysend"})


def _otel_trace_id_getter() -> Callable[[], str | None] | None:
    """A function returning the active OpenTelemetry span's trace id, if the API is installed."""
    try:
        from opentelemetry import trace
    except ImportError:
        return None

    proxy = trace.ProxyTracerProvider
    current_span = trace.get_current_span
    invalid = trace.INVALID_SPAN
    # Without an SDK provider no span is ours to follow. The provider can be set once per
    # process; until it is, look again at most once a second (the lookup reads os.environ).
    state = {"configured": False, "recheck_at": 0.0}

    def current_trace_id() -> str | None:
        if not state["configured"]:
            now = time.monotonic()
            if now < state["recheck_at"]:
                return None
            state["recheck_at"] = now + 1.0
            if isinstance(trace.get_tracer_provider(), proxy):
                return None
            state["configured"] = True
        span = current_span()
        if span is invalid:
            return None
        context = span.get_span_context()
        return format(context.trace_id, "032x") if context.is_valid else None

    return current_trace_id


def _static_file(scope: Scope) -> bool:
    """Whether the router handed the request to Starlette's ``StaticFiles``."""
    staticfiles = sys.modules.get("starlette.staticfiles")
    return staticfiles is not None and isinstance(scope.get("endpoint"), staticfiles.StaticFiles)


def _on_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _ours(route: Any) -> bool:
    """Whether a route (or every route of a mount) serves one of our endpoints."""
    inner = getattr(route, "routes", None)
    if isinstance(inner, list) and inner:
        return all(_ours(child) for child in inner)
    endpoint = getattr(route, "endpoint", None) or getattr(route, "app", None)
    return str(getattr(endpoint, "__module__", "")).startswith("feedback_asgi.")


def _route_clash(app: Any, path: str) -> str | None:
    """The path of an app route (not one of ours) declared at or below ``path``, if any.

    Judged from the declared paths alone (a catch-all route is not reported, and calling
    ``route.matches`` would run the app's own code outside any request).
    """
    routes = getattr(app, "routes", None)
    if not isinstance(routes, list):
        return None
    for route in routes:
        declared = getattr(route, "path", None)
        if not isinstance(declared, str) or _ours(route):
            continue
        if declared.rstrip("/") == path or declared.startswith(path + "/"):
            return declared
    return None


class FeedbackMiddleware:
    """Captures each HTTP exchange, adds ``X-Trace-Id``/``X-Feedback-Token``, serves ``/feedback``.

    ``FeedbackMiddleware(app)`` or ``app.add_middleware(FeedbackMiddleware, kit=kit)``.
    Without ``kit`` it uses the kit registered for ``collector``, else the process's
    default kit (built from the environment). ``capture_inputs``/``capture_outputs`` turn
    the request/response body capture off; ``capture_metadata`` the method, path, sizes and
    (filtered) request headers. ``serve_endpoint=False`` leaves ``config.path`` to the app
    (for ``feedback_router``/``feedback_routes`` mounted there); by default the middleware
    answers it itself, with the same endpoint code, so requests never reach such a router.
    """

    __slots__ = ("_clash_checked", "_endpoint", "_errors", "_otel", "_wanted", "app",
                 "collector", "kit", "registry", "settings")

    def __init__(
        self,
        app: ASGIApp,
        collector: FeedbackCollector | None = None,
        *,
        kit: FeedbackKit | None = None,
        capture_inputs: bool = True,
        capture_outputs: bool = True,
        capture_metadata: bool = True,
        registry: FeedbackProcessorRegistry | None = None,
        serve_endpoint: bool = True,
    ) -> None:
        from feedback_asgi.kit import get_default_kit, kit_for_collector

        if kit is None and collector is not None:
            kit = kit_for_collector(collector)
        self.app = app
        self.kit: FeedbackKit = kit if kit is not None else get_default_kit()
        self.collector = collector if collector is not None else self.kit.collector
        self.registry = registry if registry is not None else self.kit.registry
        self.settings = CaptureSettings.from_config(
            self.kit.config,
            capture_inputs=capture_inputs,
            capture_outputs=capture_outputs,
            capture_metadata=capture_metadata,
        ) if self.kit.config.enabled else None
        self._errors = self.kit.errors
        self._otel = _otel_trace_id_getter()
        settings = self.settings
        trusted = {
            name for name in (
                settings.trusted_user_header if settings is not None else None,
                settings.trusted_session_header if settings is not None else None,
            ) if name
        }
        self._wanted = _WANTED_HEADERS | trusted
        # the hook point for the feedback routes: the kit's endpoint app, when there is one
        self._endpoint: ASGIApp | None = self.create_feedback_endpoint() if serve_endpoint else None
        self._clash_checked = False

    def create_feedback_endpoint(self) -> ASGIApp:
        """The ASGI app serving the feedback routes for this middleware's kit (seed API)."""
        from feedback_asgi.web.endpoint import create_feedback_endpoint

        return cast("ASGIApp", create_feedback_endpoint(self.kit))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope_type = scope["type"]
        if scope_type != "http":
            if scope_type == "lifespan":
                await self._lifespan(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        settings = self.settings
        if settings is None or CAPTURE_SCOPE_KEY in scope:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if settings.is_feedback_path(path):
            if self._endpoint is not None:
                await self._endpoint(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        if not settings.matches(scope["method"], path):
            await self.app(scope, receive, send)
            return
        kit = self.kit
        if not kit.started:
            if not self._first_steps(scope):
                await self.app(scope, receive, send)
                return
            kit.start_soon()
        try:
            capture = self._begin(scope, settings, path)
        except Exception as exc:
            self._errors.record("capture_start", exc)
            await self.app(scope, receive, send)
            return
        capture.source = scope
        await self._run(scope, receive, send, capture)

    def _first_steps(self, scope: Scope) -> bool:
        """Checks made until the kit has started; ``False`` once the middleware stepped aside."""
        if not _on_asyncio():
            if self.settings is not None:
                logger.warning(
                    "feedback-asgi needs asyncio: nothing is captured under this event loop; "
                    "the app runs without FeedbackMiddleware"
                )
            self.settings = None
            self._endpoint = None
            return False
        app = scope.get("app")  # set by Starlette and FastAPI
        if app is not None and self._endpoint is not None and not self._clash_checked:
            self._clash_checked = True
            clash = _route_clash(app, self.kit.config.path)
            if clash is not None:
                logger.warning(
                    "FeedbackMiddleware answers %s itself: the app's own route %s is never "
                    "reached; pass serve_endpoint=False to leave the path to the app",
                    self.kit.config.path, clash,
                )
        return True

    def _begin(self, scope: Scope, settings: CaptureSettings, path: str) -> ExchangeCapture:
        raw = scope.get("headers") or ()
        if not isinstance(raw, list | tuple):
            raw = list(raw)
        wanted_names = self._wanted
        # reversed: the first of repeated headers wins
        wanted = {
            lname: value for name, value in reversed(raw)
            if (lname := name.lower()) in wanted_names
        }
        # The response id is always ours: an id a client chose could name another
        # person's response. What the client or the tracing system called the request is
        # kept beside it, for correlation only.
        capture = ExchangeCapture(
            new_trace_id(), settings, self.kit.signer, method=scope["method"], path=path
        )
        otel = None
        if wanted:
            capture.request_id, otel, rejected = correlation_ids(
                wanted.get(b"x-request-id"), wanted.get(b"x-trace-id"), wanted.get(b"traceparent"))
            if rejected:
                self._errors.record("invalid incoming request id ignored")
        if otel is None and self._otel is not None:
            otel = self._otel()
        capture.otel_trace_id = otel
        capture.request_headers = raw
        # names seen before are judged from a cache, in one pass at C speed
        capture.headers_clean = settings.dropped_headers.keeps_all(raw)
        # read later (at the response's start): inner middleware may still set them
        capture.identify = identity_from_scope
        if wanted:
            self._read_headers(capture, wanted, settings)
        return capture

    def _read_headers(
        self, capture: ExchangeCapture, wanted: dict[bytes, bytes], settings: CaptureSettings
    ) -> None:
        session_header = settings.trusted_session_header
        if session_header is not None and (session := wanted.get(session_header)):
            capture.session_id = trusted_identity(session)
        elif b"cookie" in wanted and settings.session_cookie is not None:
            capture.session_id = self._cookie_session(wanted[b"cookie"], settings)
        user_header = settings.trusted_user_header
        if user_header is not None and (user := wanted.get(user_header)):
            capture.user_id = trusted_identity(user)
        content_type = wanted.get(b"content-type")
        if content_type is not None:
            capture.content_type = content_type.decode("latin-1")
        encoding = wanted.get(b"content-encoding")
        if encoding is not None:
            capture.content_encoding = encoding.decode("latin-1")

    @staticmethod
    def _cookie_session(header: bytes, settings: CaptureSettings) -> str | None:
        cookies: SimpleCookie = SimpleCookie()
        cookies.load(header.decode("latin-1"))
        morsel = cookies.get((settings.session_cookie or b"").decode())
        if morsel is None or not morsel.value:
            return None
        return session_digest(morsel.value)

    async def _run(
        self, scope: Scope, receive: Receive, send: Send, capture: ExchangeCapture
    ) -> None:
        flow = _Flow(self, capture, scope, receive, send)
        token = bind_capture(capture)
        scope[CAPTURE_SCOPE_KEY] = capture
        try:
            await self.app(scope, flow.receive, flow.send)
        except Exception as exc:
            if not capture.finished:
                capture.error = type(exc).__name__
            raise
        finally:
            scope.pop(CAPTURE_SCOPE_KEY, None)
            unbind_capture(token)
            if not capture.finished:
                flow.complete()

    @staticmethod
    async def _forward(capture: ExchangeCapture, send: Send, message: Message) -> None:
        try:
            await send(message)
        except OSError:
            capture.client_disconnected = True
            raise

    def _start(
        self, capture: ExchangeCapture, message: Message, scope: Scope
    ) -> tuple[Message, bool] | None:
        """The start message with our headers, and whether to end the stream with our event;
        ``None`` when the response is no answer (it then passes untouched)."""
        status = message["status"]
        capture.status = status
        if not is_answer(status) or _static_file(scope):
            return None
        raw = message.get("headers") or ()
        seen = {
            lname: value for name, value in raw
            if (lname := name.lower()) in _RESPONSE_WATCH
        }
        if not seen.keys() & _RESPONSE_REBUILD:  # the common case: nothing to merge or drop
            headers = [*raw, (TRACE_HEADER, capture.trace_id.encode()),
                       (TOKEN_HEADER, capture.token.encode())]
        else:
            headers = self._merged_headers(capture, raw, add_trace=TRACE_HEADER not in seen,
                                           cors=b"access-control-allow-origin" in seen)
        content_type = seen.get(b"content-type")
        if content_type is not None:
            capture.response_content_type = content_type.decode("latin-1")
        encoding = seen.get(b"content-encoding")
        if encoding is not None:
            capture.response_encoding = encoding.decode("latin-1")
        sse = False
        if content_type is not None and content_type[:17].lower() == b"text/event-stream":
            sse = capture.open_event_stream(
                encoded=encoding is not None, fixed_length=b"content-length" in seen)
        elif encoding is not None:
            capture.response.limit = 0  # encoded bytes are counted, not kept
        return {**message, "headers": headers}, sse

    @staticmethod
    def _merged_headers(
        capture: ExchangeCapture, raw: Any, *, add_trace: bool, cors: bool
    ) -> list[Any]:
        """The app's headers with our token instead of any of its own, our trace id unless
        the app set one, and, on a CORS response (one that allows an origin),
        ``Access-Control-Expose-Headers`` naming both."""
        headers: list[Any] = []
        expose: bytes | None = None
        for header in raw:
            lname = header[0].lower()
            if lname == TOKEN_HEADER:
                continue
            if cors and lname == b"access-control-expose-headers":
                expose = header[1] if expose is None else expose + b", " + header[1]
                continue
            headers.append(header)
        if add_trace:
            headers.append((TRACE_HEADER, capture.trace_id.encode()))
        headers.append((TOKEN_HEADER, capture.token.encode()))
        if cors:
            headers.append((b"access-control-expose-headers", merge_expose_headers(expose)))
        return headers

    async def _send_last_sse(
        self, capture: ExchangeCapture, message: Message, body: bytes, tail: bytes, send: Send
    ) -> None:
        """Forward the app's last SSE chunk, then our ``event: feedback`` as the last one,
        unless the app's stream ends inside an event (ours would complete it)."""
        try:
            event = capture.feedback_event((tail + body)[-4:])
        except Exception as exc:
            self._errors.record("sse_feedback_event", exc)
            event = b""
        if not event:
            await self._forward(capture, send, message)
            return
        if body:
            await self._forward(capture, send, {**message, "more_body": True})
        await self._forward(
            capture, send, {"type": "http.response.body", "body": event, "more_body": False}
        )

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        kit = self.kit
        errors = self._errors

        async def receive_wrapper() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup" and self._first_steps(scope):
                try:
                    await kit.startup()
                except Exception as exc:
                    errors.record("kit_startup", exc)
            return message

        async def send_wrapper(message: Message) -> None:
            if (message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed")
                    and self.settings is not None):
                try:
                    await kit.shutdown()
                except Exception as exc:
                    errors.record("kit_shutdown", exc)
            await send(message)

        await self.app(scope, receive_wrapper, send_wrapper)


class _Flow:
    """One captured request's ``receive`` and ``send`` wrappers (bound methods of one object:
    fewer objects per request than closures and their cells)."""

    __slots__ = ("answer", "capture", "downstream", "owner", "scope", "sse_event", "sse_tail",
                 "trailers", "upstream")

    def __init__(
        self, owner: FeedbackMiddleware, capture: ExchangeCapture, scope: Scope,
        receive: Receive, send: Send,
    ) -> None:
        self.owner = owner
        self.capture = capture
        self.scope = scope
        self.upstream = receive
        self.downstream = send
        self.sse_event = False
        self.sse_tail = b""
        self.trailers = False
        self.answer = False

    def complete(self) -> None:
        capture = self.capture
        capture.finish()
        if not self.answer:
            return  # no answer worth rating was sent: nothing to store
        try:
            self.owner.kit.writer.put_nowait(capture)
        except Exception as exc:
            self.owner._errors.record("exchange_enqueue", exc)

    async def receive(self) -> Message:
        message = await self.upstream()
        try:
            message_type = message["type"]
            if message_type == "http.request":
                capture = self.capture
                capture.input_read = True
                body = message.get("body")
                if body:
                    capture.request.add(body)
            elif message_type == "http.disconnect" and not self.capture.finished:
                self.capture.client_disconnected = True
        except Exception as exc:
            self.owner._errors.record("request_capture", exc)
        return message

    async def send(self, message: Message) -> None:
        capture = self.capture
        message_type = message["type"]
        if message_type == "http.response.body":
            body = message.get("body", b"")
            more_body = message.get("more_body", False)
            if not more_body and self.sse_event:
                await self.owner._send_last_sse(
                    capture, message, body, self.sse_tail, self.downstream
                )
            else:
                try:  # _forward, inlined on the hot path
                    await self.downstream(message)
                except OSError:
                    capture.client_disconnected = True
                    raise
            try:
                if body:
                    sse = capture.sse
                    if sse is not None:
                        sse.feed(body)
                    else:
                        capture.response.add(body)
                    if self.sse_event:
                        self.sse_tail = (self.sse_tail + body)[-4:]
            except Exception as exc:
                self.owner._errors.record("response_capture", exc)
                capture.sse = None
            if not more_body and not self.trailers:
                self.complete()
        elif message_type == "http.response.start":
            try:
                started = self.owner._start(capture, message, self.scope)
                if started is not None:
                    message, self.sse_event = started
                    self.answer = True
                self.trailers = bool(message.get("trailers", False))
            except Exception as exc:
                self.owner._errors.record("response_headers", exc)
            try:  # _forward, inlined on the hot path
                await self.downstream(message)
            except OSError:
                capture.client_disconnected = True
                raise
        elif message_type == "http.response.trailers":
            await FeedbackMiddleware._forward(capture, self.downstream, message)
            if not message.get("more_trailers", False):
                self.complete()
        elif message_type in _FILE_MESSAGES:
            capture.response_file = True
            await FeedbackMiddleware._forward(capture, self.downstream, message)
            if not message.get("more_body", False):
                self.complete()
        else:
            await self.downstream(message)
