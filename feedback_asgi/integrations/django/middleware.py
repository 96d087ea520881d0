"""``FeedbackMiddleware`` for Django: the ASGI middleware's capture, in Django's terms.

``MIDDLEWARE += ["feedback_asgi.integrations.django.middleware.FeedbackMiddleware"]``, after
``AuthenticationMiddleware``. Sync- and async-capable without ``MiddlewareMixin`` (no thread
hop for async views, no loop hop for sync ones). Per captured request it fills one
:class:`~feedback_asgi.capture.exchange.ExchangeCapture` (the shared core: same rules, limits,
redaction and tokens as the ASGI middleware) and binds it in the ContextVar for
``FeedbackContext``. When the response is an answer (:func:`~feedback_asgi.capture.exchange.is_answer`)
it adds ``X-Trace-Id`` and ``X-Feedback-Token`` (and names them in
``Access-Control-Expose-Headers`` when the response allows an origin), tees a streaming
response lazily (keeping its sync or async kind, and ending an event stream that ends between
events with ``event: feedback``), and hands the exchange to the writer at
``response.close()``; any other response, or a view exception, passes untouched and nothing
is stored.

The app behaves as without us otherwise: the user and the session are read only if the app
loaded them (never loaded here), so the token of a view that never used them is anonymous;
the request body is read only when it is small JSON or text (never multipart), Django then
keeps it for the view, and a read that fails leaves the view's own read failing alike; a
cache pickles the response without our headers or closer. An invalid ``FEEDBACK_ASGI`` fails
at startup (``ImproperlyConfigured``), when Django builds the middleware. Our own failures are
counted and never reach the view or the client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.http.request import RawPostDataException, UnreadablePostError
from django.http.response import HttpResponseBase, ResponseHeaders

from feedback_asgi.capture.exchange import (
    CAPTURE_SCOPE_KEY,
    CaptureSettings,
    ExchangeCapture,
    bind_capture,
    correlation_ids,
    is_answer,
    merge_expose_headers,
    new_trace_id,
    session_digest,
    trusted_identity,
    unbind_capture,
)
from feedback_asgi.core.exceptions import ConfigurationError
from feedback_asgi.integrations.django.conf import get_kit
from feedback_asgi.kit import FeedbackKit

__all__ = ["FeedbackMiddleware"]

_TEXT_TYPES = ("application/json", "text/")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_BOTH = frozenset({"x-trace-id", "x-feedback-token"})
_TOKEN_ONLY = frozenset({"x-feedback-token"})


def _session_id(request: HttpRequest) -> str | None:
    """The digest of the request's session key, once Django has checked that it exists.

    Before the session is loaded, ``session_key`` is whatever the cookie says (a client can
    send any value); loading it (the view, or ``AuthenticationMiddleware`` resolving the
    user) resets an unknown key to ``None``. An unloaded session is no identity: loading it
    here would cost a query per request.
    """
    session = getattr(request, "session", None)
    if session is None or not hasattr(session, "_session_cache"):
        return None
    key = getattr(session, "session_key", None)
    return session_digest(key) if isinstance(key, str) and key else None


def _user_id(user: Any) -> str | None:
    if user is None or getattr(user, "is_authenticated", False) is not True:
        return None
    pk = getattr(user, "pk", None)
    return None if pk is None else str(pk)


def _loaded_user(request: HttpRequest) -> Any:
    """The user, once the app (or a middleware) loaded it; else ``None``. Never loads it.

    Loading the lazy ``request.user`` (or awaiting ``request.auser()``) reads the session:
    the response would gain ``Vary: Cookie``, a signed-in request two queries, and a session
    whose password hash is stale would be flushed, on pages that never asked for the user.
    """
    found = request.__dict__
    for cached in ("_cached_user", "_acached_user"):  # AuthenticationMiddleware's, once loaded
        if cached in found:
            return found[cached]
    user = found.get("user")
    wrapped = getattr(user, "_wrapped", None)
    if wrapped is None:
        return user  # absent, or not lazy
    from django.utils.functional import empty

    return None if wrapped is empty else wrapped


def _header_bytes(meta: Any, key: str) -> bytes | None:
    value = meta.get(key)
    return None if value is None else value.encode("latin-1", "replace")


def _trusted_header(meta: Any, name: bytes | None) -> str | None:
    """The value of a header the configuration says a trusted proxy sets, if valid."""
    if name is None:
        return None
    value = meta.get("HTTP_" + name.decode("latin-1").upper().replace("-", "_"))
    return trusted_identity(value.encode("latin-1", "replace")) if value else None


def _json_or_text(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith(_TEXT_TYPES) or (media.startswith("application/") and media.endswith("+json"))


class _MetaHeaders:
    """The request headers of a WSGI/ASGI ``META`` dict, encoded only when iterated.

    Built per request (a copy of the ``HTTP_*`` items), iterated once, off the response
    path, when the capture is prepared for storage.
    """

    __slots__ = ("_items",)

    def __init__(self, meta: Any) -> None:
        self._items = [(key, value) for key, value in meta.items()
                       if key.startswith("HTTP_") or key in ("CONTENT_TYPE", "CONTENT_LENGTH")]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        for key, value in self._items:
            name = key[5:] if key.startswith("HTTP_") else key
            yield (name.replace("_", "-").lower().encode("latin-1", "replace"),
                   str(value).encode("latin-1", "replace"))


class _Closer:
    """Finishes the exchange at ``response.close()`` (Django calls its ``_resource_closers``).

    A cache pickles the response with it: the copy is a no-op (``type(None)``, a callable
    returning ``None``) that needs nothing of this package to load.
    """

    __slots__ = ("capture", "kit")

    def __init__(self, kit: FeedbackKit, capture: ExchangeCapture) -> None:
        self.kit = kit
        self.capture = capture

    def __call__(self) -> None:
        FeedbackMiddleware._complete(self.kit, self.capture)

    def __reduce__(self) -> tuple[Any, ...]:
        return type, (None,)


class _Headers(ResponseHeaders):
    """The response's own headers (the same store), except that a pickled copy (a cache's)
    leaves ours out: a replay we do not see carries no token for another request's exchange.
    """

    def __init__(self, headers: ResponseHeaders, ours: frozenset[str]) -> None:
        super().__init__({})
        self._store = headers._store
        self._ours = ours

    def __reduce__(self) -> tuple[Any, ...]:
        kept = {name: value for key, (name, value) in self._store.items()
                if key not in self._ours}
        return ResponseHeaders, (kept,)


class _UnreadableStream:
    """Stands in for a request stream that failed while we read the body, so the view's own
    read fails as it would have without us (Django raises the same exception from it)."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def read(self, *args: Any) -> bytes:
        raise self.error

    readline = read

    def close(self) -> None:
        pass


class FeedbackMiddleware:
    """Captures each request/answer, adds the trace id and feedback token headers."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)
        try:
            get_kit()  # Django builds its middleware at startup: an invalid setting fails there
        except ConfigurationError as exc:
            raise ImproperlyConfigured(
                f"FEEDBACK_ASGI: {exc} (feedback_asgi.E002)") from exc

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        kit, capture = self._begin(request)
        if capture is None:
            return self.get_response(request)
        token = bind_capture(capture)
        try:
            response = self.get_response(request)
        finally:
            unbind_capture(token)
        return self._respond(kit, capture, request, response)

    async def __acall__(self, request: HttpRequest) -> Any:
        kit, capture = self._begin(request)
        if capture is None:
            return await self.get_response(request)
        token = bind_capture(capture)
        try:
            response = await self.get_response(request)
        finally:
            unbind_capture(token)
        return self._respond(kit, capture, request, response)

    # request

    def _begin(self, request: HttpRequest) -> tuple[FeedbackKit, ExchangeCapture | None]:
        kit = get_kit()
        if not kit.config.enabled:
            return kit, None
        scope = getattr(request, "scope", None)
        if scope is not None and CAPTURE_SCOPE_KEY in scope:
            return kit, None  # the ASGI FeedbackMiddleware around Django captures it already
        try:
            settings_ = kit.capture_settings
            path = request.path
            method = request.method or "GET"
            if not settings_.should_capture(method, path):
                return kit, None
            return kit, self._capture(kit, settings_, request, method, path)
        except Exception as exc:
            kit.errors.record("capture_start", exc)
            return kit, None

    def _capture(
        self, kit: FeedbackKit, settings_: CaptureSettings, request: HttpRequest, method: str,
        path: str,
    ) -> ExchangeCapture:
        meta = request.META
        # the response id is always ours; the client's ids are kept for correlation only
        capture = ExchangeCapture(new_trace_id(), settings_, kit.signer, method=method, path=path)
        capture.request_id, capture.otel_trace_id, rejected = correlation_ids(
            *(_header_bytes(meta, key)
              for key in ("HTTP_X_REQUEST_ID", "HTTP_X_TRACE_ID", "HTTP_TRACEPARENT")))
        if rejected:
            kit.errors.record("invalid incoming request id ignored")
        if settings_.capture_metadata:
            capture.request_headers = cast("Sequence[tuple[bytes, bytes]]", _MetaHeaders(meta))
        capture.session_id = _trusted_header(meta, settings_.trusted_session_header)
        capture.user_id = _trusted_header(meta, settings_.trusted_user_header)
        content_type = meta.get("CONTENT_TYPE")
        if content_type:
            capture.content_type = content_type
        if meta.get("HTTP_CONTENT_ENCODING"):
            capture.content_encoding = meta["HTTP_CONTENT_ENCODING"]
        if settings_.capture_inputs and method in _BODY_METHODS:
            self._read_body(kit, capture, request, content_type or "")
        return capture

    @staticmethod
    def _read_body(
        kit: FeedbackKit, capture: ExchangeCapture, request: HttpRequest, content_type: str
    ) -> None:
        """Tee a small JSON/text body (Django keeps it for the view); note why not otherwise."""
        length = request.META.get("CONTENT_LENGTH") or ""
        size = int(length) if length.isdigit() else None
        if not size:
            return  # empty, or chunked: nothing we may read without consuming it
        capture.request.total = size
        reason = None
        ceiling = getattr(settings, "DATA_UPLOAD_MAX_MEMORY_SIZE", None)
        if not _json_or_text(content_type):
            reason = "content type"
        elif size > capture.settings.request_limit or (ceiling is not None and size > ceiling):
            reason = "size"
        else:
            try:
                body = request.body
            except RawPostDataException:
                reason = "already read"
            except Exception as exc:  # RequestDataTooBig and the like: the view will see it too
                reason = type(exc).__name__
                FeedbackMiddleware._unread(request, exc)
            else:
                capture.request.total = 0
                capture.request.add(body)
                capture.input_read = True
        if reason is not None:
            capture.request.truncated = True
            capture.set_field("metadata", {"input_not_captured": reason})

    @staticmethod
    def _unread(request: HttpRequest, exc: Exception) -> None:
        """After ``request.body`` failed half-way (``UnreadablePostError``: the client went
        away), let the view's own read fail the same way, not with ``RawPostDataException``."""
        state = request.__dict__
        if "_body" in state or not state.get("_read_started"):
            return  # failed before reading (RequestDataTooBig): the view's read fails alike
        error: BaseException = exc
        while isinstance(error, UnreadablePostError) and error.__cause__ is not None:
            error = error.__cause__  # the stream's own error: Django wraps it again
        state["_stream"] = _UnreadableStream(error)
        state["_read_started"] = False

    # response

    def _respond(
        self, kit: FeedbackKit, capture: ExchangeCapture, request: HttpRequest,
        response: HttpResponseBase,
    ) -> HttpResponseBase:
        if not is_answer(response.status_code):
            return response  # no answer to rate: untouched, and nothing is stored
        try:
            # the user and session only as the app left them: loading them is not ours to do
            user_id = _user_id(_loaded_user(request))
            if user_id is not None and capture.user_id is None:
                capture.user_id = user_id
            session_id = _session_id(request)
            if session_id is not None:
                capture.session_id = session_id
        except Exception as exc:
            kit.errors.record("django_identity", exc)
        try:
            self._tag(capture, response)
            # Django calls these at response.close(): after the last chunk was sent
            closers: list[Callable[[], None]] = getattr(response, "_resource_closers")  # noqa: B009
            closers.append(_Closer(kit, capture))
        except Exception as exc:
            kit.errors.record("response_headers", exc)
        return response

    def _tag(self, capture: ExchangeCapture, response: HttpResponseBase) -> None:
        capture.status = response.status_code
        settings_ = capture.settings
        content_type = response.get("Content-Type")
        encoding = response.get("Content-Encoding")
        capture.response_content_type = content_type
        capture.response_encoding = encoding
        add_trace = not response.has_header("X-Trace-Id")  # an app's own is kept
        if type(response.headers) is ResponseHeaders:
            # pickled (cached) without ours
            response.headers = _Headers(response.headers, _BOTH if add_trace else _TOKEN_ONLY)
        if add_trace:
            response["X-Trace-Id"] = capture.trace_id
        response["X-Feedback-Token"] = capture.token
        if response.has_header("Access-Control-Allow-Origin"):  # a CORS response only
            expose = response.get("Access-Control-Expose-Headers")
            merged = merge_expose_headers(expose.encode("latin-1") if expose is not None else None)
            response["Access-Control-Expose-Headers"] = merged.decode("latin-1")
        if encoding is not None:
            capture.response.limit = 0  # encoded bytes are counted, not kept
        if getattr(response, "file_to_stream", None) is not None:
            capture.response_file = True
            return
        if not response.streaming:
            if settings_.capture_outputs:
                capture.response.add(response.content)  # type: ignore[attr-defined]
            return
        sse_event = False
        if content_type is not None and content_type.lower().startswith("text/event-stream"):
            sse_event = capture.open_event_stream(
                encoded=encoding is not None, fixed_length=response.has_header("Content-Length"))
        if not (settings_.capture_outputs or sse_event):
            return
        content = response.streaming_content  # type: ignore[attr-defined]
        if response.is_async:  # type: ignore[attr-defined]
            response.streaming_content = self._tee_async(content, capture, sse_event)  # type: ignore[attr-defined]
        else:
            response.streaming_content = self._tee_sync(content, capture, sse_event)  # type: ignore[attr-defined]

    @staticmethod
    def _observe(capture: ExchangeCapture, chunk: bytes) -> None:
        try:
            if capture.sse is not None:
                capture.sse.feed(chunk)
            else:
                capture.response.add(chunk)
        except Exception as exc:
            capture.sse = None
            get_kit().errors.record("response_capture", exc)

    def _tee_sync(
        self, content: Iterator[bytes], capture: ExchangeCapture, sse_event: bool
    ) -> Iterator[bytes]:
        tail = b""
        try:
            while True:
                token = bind_capture(capture)  # FeedbackContext inside the view's generator
                try:
                    chunk = next(content)
                except StopIteration:
                    break
                finally:
                    unbind_capture(token)
                self._observe(capture, chunk)
                if sse_event:
                    tail = (tail + chunk)[-4:]
                yield chunk
            if sse_event and (event := capture.feedback_event(tail)):
                yield event
        finally:
            close = getattr(content, "close", None)
            if close is not None:
                close()

    async def _tee_async(
        self, content: AsyncIterator[bytes], capture: ExchangeCapture, sse_event: bool
    ) -> AsyncIterator[bytes]:
        tail = b""
        try:
            while True:
                token = bind_capture(capture)
                try:
                    chunk = await anext(content)
                except StopAsyncIteration:
                    break
                finally:
                    unbind_capture(token)
                self._observe(capture, chunk)
                if sse_event:
                    tail = (tail + chunk)[-4:]
                yield chunk
            if sse_event and (event := capture.feedback_event(tail)):
                yield event
        finally:
            aclose = getattr(content, "aclose", None)
            if aclose is not None:
                await aclose()

    # completion

    @staticmethod
    def _complete(kit: FeedbackKit, capture: ExchangeCapture) -> None:
        """``response.close()``: the exchange is finished; hand it to the writer."""
        if capture.finished:
            return
        capture.finish()
        try:
            # an in-memory exchange store builds the exchange when (if) feedback reads it;
            # credentials and redactable bodies are still dealt with now, in prepare()
            writer = kit.writer
            if not writer._keep_pending(capture):
                writer.put_nowait(capture)
        except Exception as exc:
            kit.errors.record("exchange_enqueue", exc)
