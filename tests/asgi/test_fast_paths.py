"""Cheaper per-request steps of the middleware give what the plain steps give."""

from __future__ import annotations

import pytest
from opentelemetry import trace

from feedback_asgi.middleware import _otel_trace_id_getter

SPAN = trace.NonRecordingSpan(
    trace.SpanContext(
        trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
        span_id=0x00F067AA0BA902B7,
        is_remote=True,
        trace_flags=trace.TraceFlags(1),
    )
)


def _reference(span: trace.Span | None) -> str | None:
    """The check as first written: provider first, then the current span."""
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return None
    context = (span or trace.get_current_span()).get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


@pytest.mark.parametrize("sdk", [False, True])
@pytest.mark.parametrize("span", [None, SPAN, trace.INVALID_SPAN])
def test_otel_trace_id_matches_the_provider_first_check(
    sdk: bool, span: trace.Span | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if sdk:  # as if an SDK provider were set
        monkeypatch.setattr(trace, "get_tracer_provider", trace.NoOpTracerProvider)
    getter = _otel_trace_id_getter()
    assert getter is not None
    if span is None:
        got, expected = getter(), _reference(None)
    else:
        with trace.use_span(span):
            got, expected = getter(), _reference(span)
    assert got == expected
    assert (got is not None) == (sdk and span is SPAN)


# Redactor.is_clean: the empty-body shortcut


def test_empty_body_is_clean_exactly_when_the_keys_are_searchable() -> None:
    from feedback_asgi.capture.redaction import Redactor

    assert Redactor(["password", "token"]).is_clean(b"") is True
    assert Redactor([]).is_clean(b"") is True
    # non-ASCII keys cannot be searched bytewise: never clean, empty or not
    assert Redactor(["pässword"]).is_clean(b"") is False
    assert Redactor(["pässword"]).is_clean(b"{}") is False
    # and a non-empty body still goes through the search
    assert Redactor(["token"]).is_clean(b'{"token": 1}') is False
    assert Redactor(["token"]).is_clean(b'{"tokens": 1}') is True
