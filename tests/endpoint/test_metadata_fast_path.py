"""POST /feedback metadata: skipping the redaction walk for a clean body changes nothing."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedback_asgi.config import FeedbackConfig
from feedback_asgi.endpoint import _metadata
from feedback_asgi.kit import FeedbackKit
from feedback_asgi.redaction import REDACTED
from feedback_asgi.submission import parse_submission

KIT = FeedbackKit(FeedbackConfig(database_url="memory://", secret_key="k" * 32))
UNCLEAN = b"\xff"  # never clean (not ASCII): forces the redaction walk

# words around the configured keys (password, token, secret, api_key) in every disguise
WORDS = st.sampled_from([
    "token", "Token", "TOKEN", "tokens", "max_tokens", "api_key", "API_Key", "secret",
    "password", "pass", "\u017fecret", "idempotency_key", "note", "a", "", "x=1", "token=abc",
    'say "token": 1', '"secret":"s"', "q?password=p", "é", "\\u0074oken", "k", "1",
])
TEXT = st.lists(WORDS, max_size=4).map(" ".join) | st.text(max_size=20)
JSON: Any = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(WORDS | st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    metadata=st.dictionaries(WORDS | st.text(max_size=8), JSON, max_size=6),
    ascii_only=st.booleans(),
)
def test_clean_body_shortcut_equals_the_redaction_walk(
    metadata: dict[str, Any], ascii_only: bool
) -> None:
    body = json.dumps(
        {"trace_id": "t-1", "type": "rating", "value": 3, "metadata": metadata},
        ensure_ascii=ascii_only,
    ).encode("utf-8", "surrogatepass")
    submission = parse_submission(json.loads(body))
    fast = _metadata(KIT, submission, body)
    walked = _metadata(KIT, submission, UNCLEAN)
    expected = KIT.capture_settings.redactor.redact_value(submission.metadata)
    expected.pop("idempotency_key", None)
    expected["source"] = "http"
    assert fast == walked == expected
    assert json.dumps(fast, sort_keys=True) == json.dumps(walked, sort_keys=True)


def test_secret_keys_are_redacted_whatever_the_path() -> None:
    body = b'{"type": "rating", "value": 3, "metadata": {"Token": "abc", "note": "x"}}'
    submission = parse_submission(json.loads(body))
    assert _metadata(KIT, submission, body) == {"Token": REDACTED, "note": "x", "source": "http"}
