"""schemathesis against the FastAPI example's OpenAPI document, every feedback route, with its
checks: no 5xx but a deliberate 503 (with Retry-After), no undocumented status, responses and
their headers and content types as documented, schema-violating requests refused, and every
error body in the documented shape.

All of schemathesis's checks run but one: ``positive_data_acceptance`` (a schema-valid request
must be accepted). Some validation cannot be written as JSON Schema: a value's shape depends on
the feedback kind (custom kinds included), the rating range on the app's configuration, a
neutral vote needs a comment; those requests get the documented 422.

Two apps: one on working in-memory storage (no 5xx at all), one whose database is down (503
allowed, nothing else). Cases carrying a ``trace_id`` get a valid token for it, so they reach
validation and storage instead of stopping at the token check. ``make soak`` runs this file
with ``FEEDBACK_SOAK_EXAMPLES`` raised.
"""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, seed, settings
from schemathesis.checks import not_a_server_error, positive_data_acceptance

from example_apps.fastapi_chat.app import create_app
from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.kit import FeedbackKit

TRACE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
EXAMPLES = int(os.environ.get("FEEDBACK_SOAK_EXAMPLES", "25"))
SECRET = "schemathesis-tests-secret-key-0123456789"

ADMIN = "schemathesis-admin-token-0123456789"
KIT = FeedbackKit.for_testing(secret_key=SECRET, admin_token=ADMIN)
DOWN_KIT = FeedbackKit(
    FeedbackConfig(database_url="postgresql+asyncpg://postgres@127.0.0.1:1/nowhere",
                   secret_key=SECRET, admin_token=ADMIN, connect_timeout_seconds=0.2),
    exchanges=KIT.exchanges,
)

schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(KIT)).include(
    path_regex="^/feedback"
)
down_schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(DOWN_KIT)).include(
    path_regex="^/feedback"
)

HEALTH = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]


def _with_token(case: Any, kit: FeedbackKit) -> None:
    body = case.body
    trace = body.get("trace_id") if isinstance(body, dict) else None
    if isinstance(trace, str) and TRACE_ID.fullmatch(trace):
        case.headers = {**(case.headers or {}), "X-Feedback-Token": kit.signer.sign(
            body["trace_id"], "schemathesis")}
    elif case.method != "POST" or case.path != "/feedback":
        # the read/admin routes: with rights, so cases reach validation and storage
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {ADMIN}"}


def _check(case: Any, response: Any, *, down: bool) -> None:
    status = response.status_code
    health = case.path.endswith("/health")
    if down and status == 503:
        # the deliberate one: retry later (the health route reports instead)
        assert health or response.headers.get("retry-after"), response.headers
    else:
        assert status < 500, (status, response.text)
    if status >= 400 and not health:
        body = response.json()
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"code", "message", "fields"}, body
        assert isinstance(body["error"]["code"], str)
        assert isinstance(body["error"]["message"], str)
        assert isinstance(body["error"]["fields"], dict)


@schema.parametrize()
@seed(20_260_101)
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=HEALTH)
def test_feedback_routes_never_5xx(case: Any) -> None:
    _with_token(case, KIT)
    response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
    _check(case, response, down=False)


@pytest.mark.postgres
@down_schema.parametrize()
@seed(20_260_102)
@settings(max_examples=max(10, EXAMPLES // 4), deadline=None, suppress_health_check=HEALTH)
def test_feedback_routes_with_the_database_down_answer_only_a_deliberate_503(case: Any) -> None:
    _with_token(case, DOWN_KIT)
    response = case.call_and_validate(
        excluded_checks=[positive_data_acceptance, not_a_server_error])
    _check(case, response, down=True)
