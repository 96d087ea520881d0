"""Arbitrary bodies and headers never get a 5xx, and every error has the documented shape."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from feedback_asgi.kit import FeedbackKit
from feedback_asgi.web.endpoint import create_feedback_endpoint
from tests.endpoint.apps import call_raw

KIT = FeedbackKit.for_testing()
APP = create_feedback_endpoint(KIT)
TOKEN = KIT.signer.sign("fuzz-trace", "fuzzer")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
shaped = st.fixed_dictionaries(
    {"type": st.sampled_from(["rating", "thumbs", "text", "correction", "label", "other", 3])},
    optional={
        "trace_id": st.sampled_from(["fuzz-trace", "other", "", "a b"]) | st.text(max_size=5),
        "value": json_values,
        "comment": json_values,
        "metadata": json_values,
        "token": st.sampled_from([TOKEN, TOKEN[:-3], ""]),
        "rating": json_values,
        "query": json_values,
    },
)
bodies = st.one_of(
    shaped.map(lambda d: json.dumps(d).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
)
content_types = st.sampled_from(
    [b"application/json", b"application/json; charset=utf-8", b"text/plain", None]
)


def check(status: int, body: bytes) -> None:
    assert status < 500, (status, body)  # the in-memory store is never down: no 503 either
    data: Any = json.loads(body)
    if status >= 400:
        assert set(data) == {"error"}
        assert set(data["error"]) == {"code", "message", "fields"}


@seed(20_240_601)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies, content_type=content_types, with_token=st.booleans())
def test_no_5xx_and_documented_error_shape(
    body: bytes, content_type: bytes | None, with_token: bool
) -> None:
    headers = [(b"content-type", content_type)] if content_type else []
    if with_token:
        headers.append((b"x-feedback-token", TOKEN.encode()))
    result = asyncio.run(call_raw(APP, "POST", "/feedback", headers, iter([body])))
    check(result.status, result.body)
