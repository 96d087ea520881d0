"""Django: the secrets real apps send are redacted in exchanges and in stored feedback."""

from __future__ import annotations

import asyncio
import json

import pytest
from django.forms.models import model_to_dict
from django.test import Client

from feedback_asgi.integrations.django.conf import get_kit
from feedback_asgi.integrations.django.models import AiFeedback

SECRETS = {
    "body_access_token": "s3kr1t-dj-access-01", "body_client_secret": "s3kr1t-dj-client-02",
    "x_auth_token": "s3kr1t-dj-x-auth-03", "api_key": "s3kr1t-dj-api-key-04",
    "csrf": "s3kr1t-dj-csrf-05", "referer": "s3kr1t-dj-referer-06",
    "bearer": "s3kr1tDjBearer0123456", "comment": "s3kr1t-dj-comment-pw-07",
    "metadata": "s3kr1t-dj-metadata-08", "card": "4111 1111 1111 1111",
}


@pytest.mark.django_db(transaction=True)
def test_django_exchanges_and_feedback_rows_hold_no_secret() -> None:
    client = Client()
    body = {"question": "visible question", "max_tokens": 64, "author": "visible-author",
            "access_token": SECRETS["body_access_token"],
            "client_secret": SECRETS["body_client_secret"],
            "note": f"use Bearer {SECRETS['bearer']} with card {SECRETS['card']}"}
    answer = client.post(
        "/echo/", json.dumps(body), content_type="application/json",
        HTTP_X_AUTH_TOKEN=SECRETS["x_auth_token"], HTTP_API_KEY=SECRETS["api_key"],
        HTTP_X_CSRF_TOKEN=SECRETS["csrf"], HTTP_X_VISIBLE="visible-header",
        HTTP_REFERER=f"https://app.example/chat?token={SECRETS['referer']}",
    )
    assert answer.status_code == 200
    trace = answer["X-Trace-Id"]
    exchange = asyncio.run(get_kit().exchanges.get(trace))
    assert exchange is not None
    headers = exchange.metadata["request_headers"]
    for dropped in ("x-auth-token", "api-key", "x-csrf-token"):
        assert dropped not in headers
    assert headers["x-visible"] == "visible-header"
    assert headers["referer"] == "https://app.example/chat?token=[redacted]"
    assert exchange.input["max_tokens"] == 64
    assert exchange.input["author"] == "visible-author"
    assert exchange.input["access_token"] == "[redacted]"
    response = client.post("/feedback/", json.dumps({
        "trace_id": trace, "type": "rating", "value": 5,
        "comment": f"visible comment, password={SECRETS['comment']}",
        "metadata": {"page": "visible-page", "apiKey": SECRETS["metadata"]},
    }), content_type="application/json", HTTP_X_FEEDBACK_TOKEN=answer["X-Feedback-Token"])
    assert response.status_code == 201, response.content
    row = AiFeedback.objects.get(id=response.json()["feedback_id"])
    stored = json.dumps(model_to_dict(row), default=str) + json.dumps(exchange.to_dict())
    for name, secret in SECRETS.items():
        assert secret not in stored, name
    for visible in ("visible question", "visible-author", "visible comment", "visible-page",
                    "visible-header", "max_tokens"):
        assert visible in stored, visible
