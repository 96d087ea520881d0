"""Issue 9's bad input through the Django views: the same hand-picked bodies as the ASGI surfaces
(malformed/truncated JSON, invalid UTF-8, depth 10,000, 1e309, NaN, duplicate keys, unknown
kinds, oversized fields), wrong content types, a 100 MB body refused after reading at most the
limit, and the rate limit: all 4xx with the error shape, nothing stored."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.test import Client, override_settings

from feedback_asgi.integrations.django.conf import get_kit
from feedback_asgi.integrations.django.models import AiFeedback
from tests.endpoint.test_endpoint import BAD_BODIES

TRACE = "trace-1"


def _token(trace: str = TRACE, subject: str = "alice") -> str:
    return get_kit().signer.sign(trace, subject)


def _shape(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    return dict(body["error"])


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("body", "status", "code"), BAD_BODIES)
def test_bad_bodies(body: bytes, status: int, code: str) -> None:
    response = Client().post("/feedback/", body, content_type="application/json",
                             HTTP_X_FEEDBACK_TOKEN=_token())
    assert response.status_code == status, response.content
    assert _shape(response)["code"] == code
    assert AiFeedback.objects.count() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("content_type", ["", "text/plain", "application/x-www-form-urlencoded",
                                          "application/json; charset=latin-1"])
def test_wrong_content_type(content_type: str) -> None:
    body = json.dumps({"trace_id": TRACE, "type": "thumbs", "value": 1})
    response = Client().post("/feedback/", body, content_type=content_type,
                             HTTP_X_FEEDBACK_TOKEN=_token())
    assert response.status_code == 415, response.content
    assert _shape(response)["code"] == "unsupported_media_type"
    assert AiFeedback.objects.count() == 0


class EndlessBody(io.RawIOBase):
    """A request body that never ends, counting what the app reads of it."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = len(buffer)
        buffer[:size] = b" " * size
        self.read_bytes += size
        return size


@pytest.mark.django_db(transaction=True)
def test_100_mb_body_is_413_without_reading_it() -> None:
    body = EndlessBody()
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/feedback/", "SCRIPT_NAME": "",
        "SERVER_NAME": "testserver", "SERVER_PORT": "80", "wsgi.url_scheme": "http",
        "SERVER_PROTOCOL": "HTTP/1.1", "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(100 * 1024 * 1024), "HTTP_X_FEEDBACK_TOKEN": _token(),
        "wsgi.input": io.BufferedReader(body), "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False, "wsgi.multiprocess": False, "wsgi.run_once": False,
        "REMOTE_ADDR": "127.0.0.1",
    }
    statuses: list[str] = []
    chunks = WSGIHandler()(environ, lambda status, headers: statuses.append(status))
    payload = b"".join(chunks)
    assert statuses[0].startswith("413"), (statuses, payload)
    assert json.loads(payload)["error"]["code"] == "payload_too_large"
    # the declared length is refused before the body is read (a buffered peek at most)
    assert body.read_bytes <= get_kit().config.max_payload_bytes + 8192
    assert AiFeedback.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_rate_limit_through_django() -> None:
    settings = {"secret_key": "k" * 40, "rate_limit_per_minute": 2}
    with override_settings(FEEDBACK_ASGI=settings):
        client = Client()
        statuses = []
        for number in range(3):
            trace = f"t-{number}"
            response = client.post(
                "/feedback/", json.dumps({"trace_id": trace, "type": "thumbs", "value": 1}),
                content_type="application/json", HTTP_X_FEEDBACK_TOKEN=_token(trace))
            statuses.append(response.status_code)
    assert statuses == [201, 201, 429]
    assert int(response["Retry-After"]) >= 1
    assert _shape(response)["code"] == "rate_limited"
    assert AiFeedback.objects.count() == 2
