"""``FeedbackContext``: say what a model call was, inside a request or on its own.

Inside a request captured by the middleware, the context enriches that request's exchange
(the stored input/output become the model's, not the raw HTTP bodies): it mutates the
request's :class:`~feedback_asgi.capture.exchange.ExchangeCapture`, never re-binds it, so the values
reach the middleware from sync (threadpool) routes and through other middleware too.
Outside any request (a background job, a script) it records an exchange of its own through
the kit's exchange writer, with its own trace id and token.

Works as ``async with`` and as plain ``with`` (for sync route handlers).
"""

from __future__ import annotations

import contextlib
import time
from contextvars import ContextVar, Token
from types import TracebackType
from typing import TYPE_CHECKING, Any

from feedback_asgi.capture.exchange import (
    ExchangeCapture,
    bind_capture,
    current_capture,
    new_trace_id,
    unbind_capture,
    valid_id,
)

if TYPE_CHECKING:
    from feedback_asgi.feedback.collector import FeedbackCollector
    from feedback_asgi.kit import FeedbackKit

__all__ = ["FeedbackContext", "current_context"]

_CORRELATION = ("model", "provider", "intent", "project", "endpoint", "session_id", "user_id")

_context_var: ContextVar[FeedbackContext | None] = ContextVar(
    "feedback_asgi_context", default=None
)


def current_context() -> FeedbackContext | None:
    """The innermost active ``FeedbackContext`` of this task or thread, if any."""
    return _context_var.get()


class FeedbackContext:
    """Records one operation (a model call) as the exchange that feedback will rate.

    ``collector`` is the kit's collector (``kit.collector``) or ``None``; the kit is found
    from it (or given as ``kit=``), else the process's default kit is used. ``metadata``
    is stored with the exchange. Inside the block: :meth:`set_input`, :meth:`set_result`,
    :meth:`set_metadata`; :attr:`trace_id` and :attr:`feedback_token` identify it for the
    client. The block's latency is recorded, and so is the type of an exception it raises
    (which is then re-raised).

    ``trace_id`` names the response yourself (say, your own message id; 1-64 characters of
    ``A-Z a-z 0-9 . _ -``): trusted, as it comes from your code, never from a client. By
    default the response id is minted by the server (the middleware's, inside a request).
    Inside a request it must be given before the response starts. An exchange is never
    overwritten: if the id was used before, the first exchange stays.
    """

    __slots__ = (
        "_capture",
        "_capture_token",
        "_context_token",
        "_kit",
        "_own",
        "_started",
        "_trace_id",
        "collector",
        "error",
        "input",
        "latency_ms",
        "metadata",
        "operation",
        "result",
    )

    def __init__(
        self,
        collector: FeedbackCollector | None = None,
        operation: str = "prediction",
        metadata: dict[str, Any] | None = None,
        *,
        kit: FeedbackKit | None = None,
        trace_id: str | None = None,
    ) -> None:
        if trace_id is not None and not valid_id(trace_id.encode("utf-8", "replace")):
            raise ValueError("trace_id: 1-64 characters of A-Z, a-z, 0-9, '.', '_', '-'")
        self._trace_id = trace_id
        self.collector = collector
        self.operation = operation
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.input: Any = None
        self.result: Any = None
        self.latency_ms: float | None = None
        self.error: str | None = None
        self._kit = kit
        self._capture: ExchangeCapture | None = None
        self._own = False
        self._started = 0.0
        self._context_token: Token[FeedbackContext | None] | None = None
        self._capture_token: Any = None

    # entering and leaving

    def _resolve_kit(self) -> FeedbackKit:
        from feedback_asgi.kit import get_default_kit, kit_for_collector

        if self._kit is None and self.collector is not None:
            self._kit = kit_for_collector(self.collector)
        if self._kit is None:
            self._kit = get_default_kit()
        return self._kit

    def _enter(self) -> FeedbackContext:
        if self._capture is not None:
            raise RuntimeError("a FeedbackContext can be entered only once")
        capture = current_capture()
        if capture is None:
            kit = self._resolve_kit()
            capture = ExchangeCapture(self._trace_id or new_trace_id(), kit.context_settings,
                                      kit.signer, method="", path="")
            self._own = True
            self._capture_token = bind_capture(capture)
        elif self._trace_id is not None:
            if capture.token_issued:
                raise RuntimeError(
                    "FeedbackContext(trace_id=...) inside a request must come before the "
                    "response starts: its token is signed for the id it had then"
                )
            capture.trace_id = self._trace_id
        self._capture = capture
        capture.set_field("operation", self.operation)
        if self.metadata:
            capture.set_field("metadata", self.metadata)
        self._context_token = _context_var.set(self)
        self._started = time.perf_counter()
        return self

    def _exit(self, exc_type: type[BaseException] | None) -> None:
        capture = self._capture
        assert capture is not None
        self.latency_ms = (time.perf_counter() - self._started) * 1000.0
        if exc_type is not None:
            self.error = exc_type.__name__
        self._reset()
        if self._own:
            capture.error = self.error
            capture.finish()
            try:
                self._resolve_kit().writer.put_nowait(capture)
            except Exception as exc:
                self._resolve_kit().errors.record("exchange_enqueue", exc)
        else:
            facts: dict[str, Any] = {"operation_latency_ms": self.latency_ms}
            if self.error is not None:
                facts["operation_error"] = self.error
                if capture.error is None:
                    capture.error = self.error
            capture.set_field("metadata", facts)

    def _reset(self) -> None:
        # a block entered in one context and left in another (async generators) cannot reset
        if self._context_token is not None:
            try:
                _context_var.reset(self._context_token)
            except ValueError:
                _context_var.set(None)
        if self._capture_token is not None:
            with contextlib.suppress(ValueError):
                unbind_capture(self._capture_token)

    async def __aenter__(self) -> FeedbackContext:
        return self._enter()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._exit(exc_type)

    def __enter__(self) -> FeedbackContext:
        return self._enter()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._exit(exc_type)

    # inside the block

    @property
    def _active(self) -> ExchangeCapture:
        if self._capture is None:
            raise RuntimeError("use FeedbackContext as `async with` (or `with`) first")
        return self._capture

    def set_input(self, input_data: Any) -> None:
        """What the operation was given (stored instead of the raw request body)."""
        self.input = input_data
        self._active.set_field("input", input_data)

    def set_result(self, result: Any) -> None:
        """What the operation produced (stored instead of the raw response body)."""
        self.result = result
        self._active.set_field("output", result)

    def set_metadata(
        self,
        *,
        model: str | None = None,
        provider: str | None = None,
        intent: str | None = None,
        project: str | None = None,
        **extra: Any,
    ) -> None:
        """Name the model, provider, intent and project; other keywords go to metadata.

        ``endpoint``, ``session_id`` and ``user_id`` are accepted too and set those fields.
        """
        capture = self._active
        named = {"model": model, "provider": provider, "intent": intent, "project": project}
        for key in _CORRELATION[4:]:
            if key in extra:
                named[key] = extra.pop(key)
        for key, value in named.items():
            if value is not None:
                capture.set_field(key, str(value))
        if extra:
            self.metadata.update(extra)
            capture.set_field("metadata", extra)

    @property
    def trace_id(self) -> str:
        """The trace id feedback on this operation refers to."""
        return self._active.trace_id

    @property
    def feedback_token(self) -> str:
        """The signed token a client sends with its feedback on this operation."""
        return self._active.token

    @property
    def in_request(self) -> bool:
        """Whether this context enriches a captured request's exchange."""
        return self._capture is not None and not self._own
