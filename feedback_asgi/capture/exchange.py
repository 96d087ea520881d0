"""What to capture from a request, and the per-request holder that captures it.

Framework-neutral: the ASGI middleware (and the Django one) fill an :class:`ExchangeCapture`
from their own request objects; everything here works on bytes and header lists.

* :class:`CaptureSettings`: the capture rules (include/exclude patterns, methods, the
  feedback path) and limits, resolved once from a :class:`~feedback_asgi.core.config.FeedbackConfig`.
* Trace ids: :func:`valid_id`, :func:`trace_id_from_traceparent`, :func:`new_trace_id`.
* :class:`BodyTee`: a bounded copy of a body that keeps counting the bytes it drops.
* :class:`ExchangeCapture`: the one mutable holder per request, bound in a ContextVar
  (:func:`current_capture`) so :class:`~feedback_asgi.context.FeedbackContext` can enrich it;
  :meth:`ExchangeCapture.to_exchange` turns it into a redacted
  :class:`~feedback_asgi.core.records.Exchange`, off the request path.
"""

from __future__ import annotations

import fnmatch
import hashlib
import itertools
import json
import os
import re
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from feedback_asgi.capture.redaction import (
    ALWAYS_REDACTED_HEADERS,
    DroppedHeaders,
    Redactor,
    config_redactor,
    decode_body,
    redactor_for,
)
from feedback_asgi.capture.sse import SSEDataParser, ends_between_events, format_sse_event
from feedback_asgi.core.records import Exchange

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from feedback_asgi.core.config import FeedbackConfig
    from feedback_asgi.core.tokens import TokenSigner

__all__ = [
    "CAPTURE_SCOPE_KEY",
    "EXPOSED_HEADERS",
    "BodyTee",
    "CaptureSettings",
    "ExchangeCapture",
    "correlation_ids",
    "current_capture",
    "identity_from_scope",
    "is_answer",
    "merge_expose_headers",
    "new_trace_id",
    "session_digest",
    "session_id_from_scope",
    "session_subject",
    "trace_id_from_traceparent",
    "trusted_identity",
    "user_subject",
    "valid_id",
]

CAPTURE_SCOPE_KEY = "feedback_asgi"
"""The scope key under which the middleware puts the request's :class:`ExchangeCapture`."""

_ID_PATTERN = re.compile(rb"[A-Za-z0-9._-]{1,64}")
_TRACEPARENT = re.compile(rb"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")
_ZERO_TRACE = b"0" * 32

_capture_var: ContextVar[ExchangeCapture | None] = ContextVar("feedback_asgi_capture", default=None)


def current_capture() -> ExchangeCapture | None:
    """The exchange being captured for the current request, if any."""
    return _capture_var.get()


def valid_id(value: bytes) -> bool:
    """Whether an incoming id matches ``^[A-Za-z0-9._-]{1,64}$``."""
    return _ID_PATTERN.fullmatch(value) is not None


_IDENTITY = re.compile(rb"[\x21-\x7e\x80-\xff](?:[\x20-\x7e\x80-\xff]{0,253}[\x21-\x7e\x80-\xff])?")


def trusted_identity(value: bytes) -> str | None:
    """A session or user id from a header a trusted proxy sets: 1-255 visible characters
    (inner spaces allowed), else ``None``."""
    value = value.strip()
    return value.decode("latin-1") if _IDENTITY.fullmatch(value) else None


_NOT_ANSWERS = frozenset({204, 205, 206})
EXPOSED_HEADERS = ("X-Trace-Id", "X-Feedback-Token")
"""The response headers a cross-origin page must be allowed to read."""


def is_answer(status: int) -> bool:
    """Whether a response with ``status`` can be an answer worth rating: a 2xx with content.

    Redirects, 304s, the router's 404/405, a handler's own errors, 204 No Content,
    205 Reset Content and 206 Partial Content are not captured and get no token.
    """
    return 200 <= status < 300 and status not in _NOT_ANSWERS


def merge_expose_headers(value: bytes | None) -> bytes:
    """``Access-Control-Expose-Headers`` with :data:`EXPOSED_HEADERS` added to ``value``
    (the app's own, if any). Only for a CORS response: one carrying
    ``Access-Control-Allow-Origin``."""
    if value is None:
        return ", ".join(EXPOSED_HEADERS).encode()
    names = [part.strip() for part in value.decode("latin-1").split(",") if part.strip()]
    if "*" in names:
        return value
    known = {name.lower() for name in names}
    names.extend(name for name in EXPOSED_HEADERS if name.lower() not in known)
    return ", ".join(names).encode("latin-1")


def session_subject(session_id: str) -> str:
    """The token subject of a session (kept apart from user ids that look the same)."""
    return "session:" + session_id


def user_subject(user_id: str) -> str:
    """The token subject of a signed-in user."""
    return "user:" + user_id


def session_digest(value: str) -> str:
    """The session id kept for a session cookie or key (the value is a credential)."""
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def correlation_ids(
    request_id: bytes | None, trace_id: bytes | None, traceparent: bytes | None
) -> tuple[str | None, str | None, bool]:
    """What a client or a tracing system called the request: ``(request_id, otel_trace_id,
    rejected)``. The request id is ``X-Request-ID``, else ``X-Trace-Id``, when valid
    (:func:`valid_id`); ``rejected`` tells that one was sent and ignored. For correlation
    only: the response id is always minted (:func:`new_trace_id`)."""
    rejected = False
    found = None
    for incoming in (request_id, trace_id):
        if incoming is not None:
            if valid_id(incoming):
                found = incoming.decode()
                break
            rejected = True
    otel = trace_id_from_traceparent(traceparent) if traceparent is not None else None
    return found, otel, rejected


_SESSION_KEYS = ("session_id", "sid", "id")


def session_id_from_scope(scope: Mapping[str, Any]) -> str | None:
    """The session id in ``scope["session"]`` (SessionMiddleware), under ``session_id``,
    ``sid`` or ``id``; ``None`` when there is none."""
    session = scope.get("session")
    if isinstance(session, dict):
        for key in _SESSION_KEYS:
            value = session.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool) and value != "":
                return str(value)
    return None


def identity_from_scope(capture: ExchangeCapture) -> None:
    """Fill session and user ids from what session/auth middleware put in ``capture.source``
    (the scope), read at the response's start: inner middleware may still set them."""
    scope = capture.source
    if scope is None or ("session" not in scope and "user" not in scope):
        return
    session_id = session_id_from_scope(scope)
    if session_id is not None:
        capture.session_id = session_id
    user = scope.get("user")
    if user is not None and getattr(user, "is_authenticated", False) is True:
        for attribute in ("identity", "id", "pk", "username", "display_name"):
            try:
                value = getattr(user, attribute, None)
            except Exception:  # Starlette's BaseUser.identity raises NotImplementedError
                continue
            if isinstance(value, str | int) and not isinstance(value, bool) and value != "":
                capture.user_id = str(value)
                break


def trace_id_from_traceparent(value: bytes) -> str | None:
    """The trace id of a W3C ``traceparent`` header, or ``None`` when it is not valid."""
    match = _TRACEPARENT.fullmatch(value.strip())
    if match is None or match.group(1) == _ZERO_TRACE or value[:2] == b"ff":
        return None
    return match.group(1).decode()


_POOL_SIZE = 256
_pool: list[str] = []
_pool_lock = threading.Lock()
_VERSION_4 = (0xF000 << 64 | 0xC000 << 48, 0x4000 << 64 | 0x8000 << 48)
"""Masks setting the version (4) and variant (RFC 4122) bits of a 128-bit integer."""


def _forget_pool() -> None:
    # a forked worker must not hand out the ids its parent was about to use
    _pool.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _refill() -> str:
    clear, mark = ~_VERSION_4[0], _VERSION_4[1]
    raw = os.urandom(16 * _POOL_SIZE)
    with _pool_lock:
        _pool.extend(
            format(int.from_bytes(raw[at : at + 16]) & clear | mark, "032x")
            for at in range(16, len(raw), 16)
        )
    return format(int.from_bytes(raw[:16]) & clear | mark, "032x")


def new_trace_id() -> str:
    """A new random trace id: the hex form of a version-4 UUID.

    The random bytes come from ``os.urandom``, read for 256 ids at a time: one system
    call per id costs more than the rest of the id (and most of a small request's budget).
    """
    try:
        return _pool.pop()  # atomic: threads never share an id
    except IndexError:
        return _refill()


_BUILTIN_REDACTION = Redactor()
_BODY, _SSE, _FILE = range(3)
"""How a frozen capture holds the response: teed body, SSE data payloads, or a file."""
_HEADER_SEP = "\x00"
"""Joins frozen header names and values (HTTP forbids NUL in both)."""
_HEADER_SEP_BYTES = _HEADER_SEP.encode()


def _kept_headers(
    raw: Sequence[tuple[bytes, bytes]], dropped: frozenset[bytes]
) -> str | tuple[tuple[str, str], ...]:
    """The request headers that may be kept, names and values joined by NUL in one string
    (pairs instead when a value holds a NUL, which only a raw ASGI caller can send).

    ``name in dropped`` decides: for :class:`~feedback_asgi.capture.redaction.DroppedHeaders` the
    exact names and the secret-name rule (``X-Auth-Token``, ``Api-Key``...)."""
    kept = [part for pair in raw if pair[0].lower() not in dropped for part in pair]
    joined = _HEADER_SEP_BYTES.join(kept)
    if joined.count(_HEADER_SEP_BYTES) <= len(kept) - 1:
        return joined.decode("latin-1")
    return tuple(
        (kept[at].decode("latin-1"), kept[at + 1].decode("latin-1"))
        for at in range(0, len(kept), 2)
    )


def _joined_headers(raw: Sequence[tuple[bytes, bytes]]) -> str | tuple[tuple[str, str], ...]:
    """:func:`_kept_headers` for headers known to hold nothing to drop: one join, no loop."""
    joined = _HEADER_SEP_BYTES.join(itertools.chain.from_iterable(raw))
    if joined.count(_HEADER_SEP_BYTES) == 2 * len(raw) - 1:
        return joined.decode("latin-1")
    return _kept_headers(raw, frozenset())


def _thawed_headers(
    frozen: str | tuple[tuple[str, str], ...], redactor: Redactor
) -> dict[str, str]:
    """``{lowercase name: value}``, repeated headers joined with ``", "``, values redacted
    (secrets in them, and every query parameter of a URL such as ``Referer``)."""
    if isinstance(frozen, str):
        parts = frozen.split(_HEADER_SEP) if frozen else []
        pairs: Iterable[tuple[str, str]] = zip(parts[::2], parts[1::2], strict=True)
    else:
        pairs = frozen
    result: dict[str, str] = {}
    for raw_name, value in pairs:
        name = raw_name.lower()
        value = redactor.redact_header_value(value)
        result[name] = f"{result[name]}, {value}" if name in result else value
    return result


_REDACTED_FIELDS = frozenset({"input", "output", "metadata"})


def _compile_patterns(patterns: Sequence[str]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


@dataclass(frozen=True, slots=True)
class CaptureSettings:
    """Capture rules and limits, resolved once from the configuration."""

    request_limit: int = 65_536
    response_limit: int = 65_536
    capture_inputs: bool = True
    capture_outputs: bool = True
    capture_metadata: bool = True
    feedback_path: str = "/feedback"
    methods: frozenset[str] = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
    include: re.Pattern[str] | None = None
    exclude: re.Pattern[str] | None = None
    redacted_headers: frozenset[str] = frozenset()
    dropped_headers: DroppedHeaders = field(init=False)
    """The request headers never kept: ``redacted_headers``, the ones always redacted, and
    (through ``in``) every name the redactor's key rule matches, as bytes (what an ASGI
    scope holds); derived, not set."""
    redactor: Redactor = _BUILTIN_REDACTION
    session_cookie: bytes | None = None
    trusted_user_header: bytes | None = None
    trusted_session_header: bytes | None = None
    sse_feedback_event: bool = True

    def __post_init__(self) -> None:
        dropped = DroppedHeaders(
            (name.lower().encode("latin-1")
             for name in (*self.redacted_headers, *ALWAYS_REDACTED_HEADERS)),
            self.redactor,
        )
        object.__setattr__(self, "dropped_headers", dropped)  # a frozen dataclass

    @classmethod
    def from_config(
        cls,
        config: FeedbackConfig,
        *,
        capture_inputs: bool = True,
        capture_outputs: bool = True,
        capture_metadata: bool = True,
    ) -> CaptureSettings:
        """Settings for ``config``; the ``capture_*`` switches turn parts of the capture off."""
        return cls(
            request_limit=config.capture_request_limit if capture_inputs else 0,
            response_limit=config.capture_response_limit if capture_outputs else 0,
            capture_inputs=capture_inputs,
            capture_outputs=capture_outputs,
            capture_metadata=capture_metadata,
            feedback_path=config.path,
            methods=frozenset(config.capture_methods),
            include=_compile_patterns(config.capture_include),
            exclude=_compile_patterns(config.capture_exclude),
            redacted_headers=frozenset(name.lower() for name in config.redact_headers),
            redactor=config_redactor(config),
            session_cookie=config.session_cookie.encode() if config.session_cookie else None,
            trusted_user_header=(
                config.trusted_user_header.lower().encode() if config.trusted_user_header else None
            ),
            trusted_session_header=(
                config.trusted_session_header.lower().encode()
                if config.trusted_session_header else None
            ),
            sse_feedback_event=config.sse_feedback_event,
        )

    def is_feedback_path(self, path: str) -> bool:
        """Whether ``path`` is the feedback path or below it (served by the endpoint)."""
        prefix = self.feedback_path
        return path == prefix or (path.startswith(prefix) and path[len(prefix) : len(prefix) + 1] == "/")

    def should_capture(self, method: str, path: str) -> bool:
        """Whether a request is captured: method allowed, path included, not excluded."""
        return not self.is_feedback_path(path) and self.matches(method, path)

    def matches(self, method: str, path: str) -> bool:
        """:meth:`should_capture` for a path already known not to be the feedback path."""
        if method not in self.methods:
            return False
        if self.include is not None and self.include.match(path) is None:
            return False
        return self.exclude is None or self.exclude.match(path) is None


class BodyTee:
    """A bounded copy of a body: keeps the first ``limit`` bytes, counts all of them."""

    __slots__ = ("_first", "_more", "limit", "size", "total", "truncated")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.total = 0
        self.truncated = False
        # the first chunk alone, a list only from the second one on: most bodies are one
        # chunk, and every list lives (and is tracked by the collector) for the request
        self._first: bytes | None = None
        self._more: list[bytes] | None = None

    @property
    def chunks(self) -> list[bytes]:
        """The kept chunks, in order."""
        if self._first is None:
            return []
        return [self._first, *(self._more or ())]

    def add(self, body: bytes) -> None:
        """Tee one chunk: copy at most what still fits (bytes objects are kept, not copied)."""
        length = len(body)
        if not length:
            return
        self.total += length
        room = self.limit - self.size
        if length > room:
            self.truncated = True
            if room <= 0:
                return
            body = bytes(body[:room])
        elif type(body) is not bytes:
            body = bytes(body)
        if self._first is None:
            self._first = body
        elif self._more is None:
            self._more = [body]
        else:
            self._more.append(body)
        self.size += len(body)

    def data(self) -> bytes:
        """The kept bytes."""
        first = self._first
        if first is None:
            return b""
        more = self._more
        return first if more is None else first + b"".join(more)


class ExchangeCapture:
    """The per-request holder: what the middleware tees and what ``FeedbackContext`` adds.

    One is created per captured request, bound in a ContextVar and in the (copied) scope
    under :data:`CAPTURE_SCOPE_KEY`. Code inside the request mutates it (never re-binds
    it); once the response is finished it goes to the exchange writer, which calls
    :meth:`to_exchange` off the request path.
    """

    __slots__ = (
        "_fields_copied",
        "_headers",
        "_token",
        "client_disconnected",
        "content_encoding",
        "content_type",
        "error",
        "fields",
        "finished",
        "headers_clean",
        "identify",
        "input_read",
        "latency_ms",
        "method",
        "otel_trace_id",
        "path",
        "request",
        "request_headers",
        "request_id",
        "response",
        "response_content_type",
        "response_encoding",
        "response_file",
        "session_id",
        "settings",
        "signer",
        "source",
        "sse",
        "started",
        "status",
        "subject",
        "trace_id",
        "user_id",
        "wall_start",
    )

    def __init__(
        self,
        trace_id: str,
        settings: CaptureSettings,
        signer: TokenSigner | None = None,
        *,
        method: str = "GET",
        path: str = "/",
    ) -> None:
        self.trace_id = trace_id
        self.settings = settings
        self.signer = signer
        self.method = method
        self.path = path
        self.session_id: str | None = None
        self.user_id: str | None = None
        self.request_id: str | None = None
        """The client's id for the request (correlation only; never the key)."""
        self.otel_trace_id: str | None = None
        """The OpenTelemetry trace the request belonged to (correlation only)."""
        self.subject: str | None = None
        self.identify: Callable[[ExchangeCapture], None] | None = None
        self.source: Any = None
        self.request = BodyTee(settings.request_limit)
        self.response = BodyTee(settings.response_limit)
        self.sse: SSEDataParser | None = None
        self.request_headers: Sequence[tuple[bytes, bytes]] = ()
        self.content_type: str | None = None
        self.content_encoding: str | None = None
        self.response_content_type: str | None = None
        self.response_encoding: str | None = None
        self.response_file = False
        self.input_read = False
        self.status: int | None = None
        self.error: str | None = None
        self.client_disconnected = False
        self.finished = False
        self.latency_ms: float | None = None
        self.fields: dict[str, Any] | None = None
        self.started = time.perf_counter()
        self.wall_start = time.time()
        self._token: str | None = None
        self._headers: str | tuple[tuple[str, str], ...] | None = None
        self._fields_copied = False
        self.headers_clean = False
        """Set by a middleware that checked ``request_headers`` hold none of the
        settings' ``dropped_headers``: they are then kept without a filtering pass."""

    # enrichment (FeedbackContext, adapters)

    def set_field(self, name: str, value: Any) -> None:
        """Set ``input``, ``output``, ``metadata`` or one of the correlation fields."""
        if name in ("session_id", "user_id"):
            setattr(self, name, value)
            return
        self._fields_copied = False  # the new value is the app's own until prepare() copies it
        if self.fields is None:
            self.fields = {}
        if name == "metadata":
            self.fields.setdefault("metadata", {}).update(value)
        else:
            self.fields[name] = value

    @property
    def token_issued(self) -> bool:
        """Whether :attr:`token` has been signed (the trace id is then fixed)."""
        return self._token is not None

    @property
    def token(self) -> str:
        """The feedback token for this exchange (signed once, on first use)."""
        token = self._token
        if token is None:
            if self.identify is not None:
                self._identify()
            subject = self.subject
            if subject is None:
                if self.session_id:
                    subject = session_subject(self.session_id)
                elif self.user_id:
                    subject = user_subject(self.user_id)
                else:
                    subject = ""
            self.subject = subject
            token = self.signer.sign(self.trace_id, subject) if self.signer is not None else ""
            self._token = token
        return token

    def _identify(self) -> None:
        identify, self.identify = self.identify, None
        try:
            if identify is not None:
                identify(self)
        finally:
            self.source = None  # breaks the scope <-> capture reference cycle

    # completion

    def open_event_stream(self, *, encoded: bool, fixed_length: bool) -> bool:
        """For a ``text/event-stream`` answer: parse its data from now on (when outputs are
        captured and it is not encoded), and whether our final event may end it (not for
        ``HEAD``, an encoded stream or a ``Content-Length`` the app fixed)."""
        settings = self.settings
        if settings.capture_outputs and not encoded:
            self.sse = SSEDataParser(settings.response_limit)
        return (settings.sse_feedback_event and not encoded and not fixed_length
                and self.method != "HEAD")

    def feedback_event(self, tail: bytes) -> bytes:
        """Our ``event: feedback`` (response id and token) to end a stream whose last bytes
        are ``tail``; empty when the stream stopped inside an event (ours would deliver the
        unfinished event a browser drops)."""
        if not ends_between_events(tail):
            return b""
        return format_sse_event(
            "feedback", json.dumps({"trace_id": self.trace_id, "token": self.token}))

    def finish(self) -> None:
        """Mark the response complete and measure latency (idempotent)."""
        if not self.finished:
            self.finished = True
            self.latency_ms = (time.perf_counter() - self.started) * 1000.0

    def prepare(self) -> None:
        """Do now what must not wait: drop credentials, copy what the app handed over.

        Afterwards the capture holds no request header it would not store, knows its
        session and user (the scope is let go), and holds redacted copies of the values
        set through :meth:`set_field` (the app may change its own objects later). Bodies
        stay the bytes that were teed: :meth:`thaw` decodes and redacts them when the
        exchange is built, which for an in-process store means only if it is ever read.
        """
        if self.identify is not None:
            self._identify()
        settings = self.settings
        raw_headers = self.request_headers
        if raw_headers:
            if self._headers is None and settings.capture_metadata:
                self._headers = (
                    _joined_headers(raw_headers) if self.headers_clean
                    else _kept_headers(raw_headers, settings.dropped_headers)
                )
            self.request_headers = ()
        fields = self.fields
        if fields is not None and not self._fields_copied:
            redactor = settings.redactor
            self.fields = {
                name: redactor.redact_value(value) if name in _REDACTED_FIELDS else value
                for name, value in fields.items()
            }
            self._fields_copied = True

    def to_exchange(self) -> Exchange:
        """The redacted, bounded :class:`Exchange` this capture describes."""
        return self.thaw(self.freeze())

    def freeze(self) -> tuple[Any, ...]:
        """:meth:`prepare`, then everything :meth:`thaw` needs as one plain tuple.

        The tuple holds only strings, bytes, numbers, ``None`` and a tuple of strings (plus
        what the app handed over, when it did), so the garbage collector stops tracking
        it after its first collection: an in-process store keeping thousands of them
        adds next to no collector work, where as many live captures (each with its tees,
        lists and dicts) made full collections long and frequent enough to show in the
        request tail.
        """
        self.prepare()
        settings = self.settings
        sse = self.sse
        if self.response_file:
            response_mode, response_data = _FILE, b""
        elif sse is not None:
            sse.close()
            response_mode, response_data = _SSE, sse.data()
        else:
            response_mode, response_data = _BODY, self.response.data()
        counter: BodyTee | SSEDataParser = sse if sse is not None else self.response
        # the order of the items is the order thaw() unpacks them in
        return (
            self.trace_id, self.session_id, self.user_id, self.request_id, self.otel_trace_id,
            self.method, self.path,
            self.status, self.latency_ms, self.error, self.client_disconnected,
            self.input_read, self.wall_start, settings.capture_inputs,
            settings.capture_outputs, settings.capture_metadata, settings.redactor.key_list,
            self.fields, self.request.data(), self.content_type, self.content_encoding,
            self.request.truncated, self.request.total, response_mode, response_data,
            self.response_content_type, self.response_encoding, counter.truncated,
            counter.total, self._headers,
        )

    @staticmethod
    def thaw(frozen: tuple[Any, ...]) -> Exchange:
        """The :class:`Exchange` of a :meth:`freeze` result: bodies decoded and redacted."""
        (trace_id, session_id, user_id, request_id, otel_trace_id, method, path, status,
         latency_ms, error,
         client_disconnected, input_read, wall_start, capture_inputs, capture_outputs,
         capture_metadata, redact_keys, fields, request_data, content_type, content_encoding,
         request_truncated, request_total, response_mode, response_data,
         response_content_type, response_encoding, response_truncated, response_total,
         headers) = frozen
        redactor = redactor_for(redact_keys)
        fields = fields or {}
        metadata: dict[str, Any] = {}
        if "input" in fields:
            input_value = fields["input"]
        elif capture_inputs:
            input_value, facts = decode_body(
                request_data, content_type=content_type, content_encoding=content_encoding,
                truncated=request_truncated, redactor=redactor,
            )
            if facts:
                metadata["input_body"] = facts
        else:
            input_value = None
        if "output" in fields:
            output_value = fields["output"]
        elif capture_outputs:
            if response_mode == _FILE:
                output_value, facts = None, {"file": True}
            elif response_mode == _SSE:
                output_value = redactor.redact_text(response_data.decode("utf-8", "replace"))
                facts = {}
            else:
                output_value, facts = decode_body(
                    response_data, content_type=response_content_type,
                    content_encoding=response_encoding, truncated=response_truncated,
                    redactor=redactor,
                )
            if facts:
                metadata["output_body"] = facts
        else:
            output_value = None
        if capture_metadata:
            metadata.update(method=method, path=path, request_bytes=request_total,
                            response_bytes=response_total, input_read=input_read)
            if headers is not None:
                metadata["request_headers"] = _thawed_headers(headers, redactor)
            if response_content_type:
                metadata["response_content_type"] = response_content_type
        extra = fields.get("metadata")
        if extra:
            metadata.update(extra)
        return Exchange(
            trace_id=trace_id,
            session_id=session_id,
            user_id=user_id,
            request_id=request_id,
            otel_trace_id=otel_trace_id,
            model=fields.get("model"),
            provider=fields.get("provider"),
            intent=fields.get("intent"),
            project=fields.get("project"),
            endpoint=fields.get("endpoint", path),
            operation=fields.get("operation"),
            input=input_value,
            output=output_value,
            status=status,
            latency_ms=latency_ms,
            error=error,
            input_truncated=request_truncated and "input" not in fields,
            output_truncated=response_truncated and "output" not in fields,
            client_disconnected=client_disconnected,
            metadata=metadata,
            created_at=datetime.fromtimestamp(wall_start, UTC),
        )


def bind_capture(capture: ExchangeCapture) -> Any:
    """Bind ``capture`` as the current one; returns the token for :func:`unbind_capture`."""
    return _capture_var.set(capture)


def unbind_capture(token: Any) -> None:
    """Undo :func:`bind_capture`."""
    _capture_var.reset(token)
