"""The Django middleware: WSGI and ASGI chains, streams, bodies, identities, failures."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from asgiref.sync import iscoroutinefunction
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client, override_settings

from feedback_asgi.capture.exchange import session_digest
from feedback_asgi.core.records import Exchange
from feedback_asgi.integrations.django.conf import get_kit
from feedback_asgi.integrations.django.middleware import FeedbackMiddleware
from tests.django.views import CHUNKS

MIDDLEWARE_WITHOUT_US = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]


def exchange(trace_id: str) -> Exchange:
    found = asyncio.run(get_kit().exchanges.get(trace_id)) if not _in_loop() else None
    assert found is not None, f"no exchange for {trace_id}"
    return found


def _in_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def aexchange(trace_id: str) -> Exchange:
    found = await get_kit().exchanges.get(trace_id)
    assert found is not None, f"no exchange for {trace_id}"
    return found


def test_capability_flags_follow_the_chain() -> None:
    def sync_view(request: HttpRequest) -> HttpResponse:
        return HttpResponse("x")

    async def async_view(request: HttpRequest) -> HttpResponse:
        return HttpResponse("x")

    assert FeedbackMiddleware.sync_capable
    assert FeedbackMiddleware.async_capable
    assert not iscoroutinefunction(FeedbackMiddleware(sync_view))
    assert iscoroutinefunction(FeedbackMiddleware(async_view))


def test_wsgi_sync_view_gets_headers_and_its_exchange_after_close() -> None:
    response = Client().get("/sync/?q=abc", HTTP_X_REQUEST_ID="req-sync-1")
    assert response.status_code == 200
    trace = response["X-Trace-Id"]
    assert len(trace) == 32  # minted here, whatever the client calls its request
    token = response["X-Feedback-Token"]
    assert get_kit().signer.verify(token, trace).is_ok()  # type: ignore[attr-defined]
    recorded = exchange(trace)
    assert recorded.request_id == "req-sync-1"
    # FeedbackContext inside the view replaced the raw bodies with the model's input/output
    assert (recorded.input, recorded.output, recorded.model) == ("abc", "CBA", "echo-1")
    assert recorded.status == 200
    assert recorded.endpoint == "/sync/"
    assert recorded.metadata["method"] == "GET"


def test_a_client_trace_id_is_correlation_never_the_response_id() -> None:
    victim = Client().get("/sync/")
    response = Client().get("/sync/", HTTP_X_TRACE_ID=victim["X-Trace-Id"])
    assert response["X-Trace-Id"] != victim["X-Trace-Id"]
    assert exchange(response["X-Trace-Id"]).request_id == victim["X-Trace-Id"]
    bad = Client().get("/sync/", HTTP_X_TRACE_ID="bad id\r\nx")
    assert len(bad["X-Trace-Id"]) == 32
    assert exchange(bad["X-Trace-Id"]).request_id is None
    assert get_kit().errors.count("invalid incoming request id ignored") == 1


def test_traceparent_is_kept_as_the_otel_trace_id() -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    responses = [Client().get("/sync/", HTTP_TRACEPARENT=f"00-{trace}-00f067aa0ba902b7-01")
                 for _ in range(2)]
    ids = {response["X-Trace-Id"] for response in responses}
    assert len(ids) == 2
    assert trace not in ids
    assert {exchange(trace_id).otel_trace_id for trace_id in ids} == {trace}


def test_a_session_header_is_trusted_only_when_configured() -> None:
    response = Client().get("/sync/", HTTP_X_SESSION_ID="someone-elses-session")
    assert exchange(response["X-Trace-Id"]).session_id is None
    assert get_kit().signer.verify(response["X-Feedback-Token"]).unwrap().anonymous
    with override_settings(FEEDBACK_ASGI={"trusted_session_header": "X-Proxy-Session"}):
        response = Client().get("/sync/", HTTP_X_PROXY_SESSION="tab-1")
        assert exchange(response["X-Trace-Id"]).session_id == "tab-1"


@pytest.mark.django_db
def test_an_unknown_session_cookie_is_no_identity() -> None:
    # a client may send any cookie value: only a session Django found is an identity
    response = Client(HTTP_COOKIE="sessionid=made-up-session-key-123").get("/sync/")
    recorded = exchange(response["X-Trace-Id"])
    assert recorded.session_id is None
    assert get_kit().signer.verify(response["X-Feedback-Token"]).unwrap().anonymous


async def test_async_view_in_the_async_chain_has_no_thread_hop(
    async_client: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with override_settings(DEBUG=True), caplog.at_level(logging.DEBUG, logger="django.request"):
        response = await async_client.get("/async/?q=xyz")
    assert response.status_code == 200
    adapted = [r.getMessage() for r in caplog.records if "adapted" in r.getMessage()]
    assert adapted == []
    recorded = await aexchange(response["X-Trace-Id"])
    # raw JSON output captured, with the configured secret field redacted
    assert recorded.output == {"answer": "ZYX", "password": "[redacted]"}
    assert response.json()["password"] == "hunter2"  # the client's answer is untouched


@pytest.mark.django_db(transaction=True)
async def test_async_mode_reads_the_user_with_auser_and_the_session_key(
    async_client: AsyncClient,
) -> None:
    user = await User.objects.acreate_user("ada", password="pw-123456")
    await async_client.aforce_login(user)
    session_key = async_client.cookies["sessionid"].value
    response = await async_client.get("/whoami/")
    assert response.json() == {"user": "ada"}
    recorded = await aexchange(response["X-Trace-Id"])
    assert recorded.user_id == str(user.pk)
    assert recorded.session_id == session_digest(session_key)
    assert session_key not in response["X-Feedback-Token"]  # the cookie value never leaks


@pytest.mark.django_db
def test_sync_mode_reads_user_and_session() -> None:
    user = User.objects.create_user("bob", password="pw-123456")
    client = Client()
    client.force_login(user)
    response = client.get("/whoami/sync/")  # a view that used request.user (and so the session)
    recorded = exchange(response["X-Trace-Id"])
    assert recorded.user_id == str(user.pk)
    assert recorded.session_id == session_digest(client.cookies["sessionid"].value)


def test_sync_streaming_response_is_teed_lazily() -> None:
    response = Client().get("/stream/sync/")
    assert response.streaming
    trace = response["X-Trace-Id"]
    assert asyncio.run(get_kit().exchanges.get(trace)) is None  # not finished before close
    body = b"".join(response.streaming_content)
    response.close()
    assert body == b"".join(CHUNKS)
    assert exchange(trace).output == "alpha beta gamma"


async def test_async_streaming_response_keeps_its_kind(async_client: AsyncClient) -> None:
    response = await async_client.get("/stream/async/")
    assert response.is_async
    body = b"".join([chunk async for chunk in response.streaming_content])
    assert body == b"".join(CHUNKS)
    await asyncio.sleep(0)
    for _ in range(100):
        if await get_kit().exchanges.get(response["X-Trace-Id"]) is not None:
            break
        await asyncio.sleep(0.01)
    assert (await aexchange(response["X-Trace-Id"])).output == "alpha beta gamma"


async def test_sse_ends_with_the_feedback_event(async_client: AsyncClient) -> None:
    response = await async_client.get("/sse/")
    text = b"".join([chunk async for chunk in response.streaming_content]).decode()
    events = [block for block in text.split("\n\n") if block]
    assert events[:3] == ["data: one", "data: two", "data: three"]
    assert events[3].startswith("event: feedback\n")
    payload = json.loads(events[3].split("data: ", 1)[1])
    assert payload == {"trace_id": response["X-Trace-Id"], "token": response["X-Feedback-Token"]}


def test_file_response_passes_through_untouched() -> None:
    response = Client().get("/file/")
    body = b"".join(response.streaming_content)
    response.close()
    assert body == b"file-bytes" * 100
    assert exchange(response["X-Trace-Id"]).output is None


def test_json_body_is_captured_and_left_for_the_view() -> None:
    payload = json.dumps({"question": "why?", "password": "hunter2"})
    response = Client().post("/echo/", payload, content_type="application/json")
    assert response.content == payload.encode()
    assert exchange(response["X-Trace-Id"]).input == {"question": "why?", "password": "[redacted]"}


def test_multipart_upload_is_not_read_and_answers_as_without_us() -> None:
    def post() -> Any:
        upload = SimpleUploadedFile("a.bin", b"x" * 5000)
        return Client().post("/upload/", {"file": upload, "name": "n"})

    with_us = post()
    with override_settings(MIDDLEWARE=MIDDLEWARE_WITHOUT_US):
        without_us = post()
    assert with_us.content == without_us.content == b'{"files": {"file": 5000}, "fields": {"name": "n"}}'
    recorded = exchange(with_us["X-Trace-Id"])
    assert recorded.input is None
    assert recorded.metadata["input_not_captured"] == "content type"


def test_chunked_reads_by_the_view_are_unaffected() -> None:
    body = "y" * 10_000  # over the capture limit: not read by the middleware
    with_us = Client().post("/chunks/", body, content_type="text/plain")
    with override_settings(MIDDLEWARE=MIDDLEWARE_WITHOUT_US):
        without_us = Client().post("/chunks/", body, content_type="text/plain")
    assert with_us.json() == without_us.json() == {"total": 10_000, "reads": 10}
    assert exchange(with_us["X-Trace-Id"]).metadata["input_not_captured"] == "size"


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100)
def test_body_over_data_upload_max_memory_size_answers_as_without_us() -> None:
    body = json.dumps({"text": "z" * 500})
    with_us = Client().post("/echo/", body, content_type="application/json")
    with override_settings(MIDDLEWARE=MIDDLEWARE_WITHOUT_US):
        without_us = Client().post("/echo/", body, content_type="application/json")
    assert with_us.status_code == without_us.status_code == 400  # RequestDataTooBig
    assert list(with_us.items()) == list(without_us.items())  # no answer: nothing of ours


def test_view_exception_is_handled_by_django_and_not_recorded() -> None:
    client = Client(raise_request_exception=False)
    response = client.get("/boom/")
    assert response.status_code == 500
    assert not response.has_header("X-Trace-Id")  # no answer to rate
    assert len(get_kit().exchanges) == 0  # type: ignore[arg-type]


def test_only_cors_responses_expose_our_headers() -> None:
    # an Origin alone is no CORS response (tests/django/test_transparency.py has the rest)
    response = Client().get("/sync/", HTTP_ORIGIN="https://app.example")
    assert response.has_header("X-Feedback-Token")
    assert not response.has_header("Access-Control-Expose-Headers")
    assert not Client().get("/sync/").has_header("Access-Control-Expose-Headers")


def test_excluded_paths_and_the_feedback_path_are_not_captured() -> None:
    assert not Client().get("/feedback/health").has_header("X-Trace-Id")
    with override_settings(FEEDBACK_ASGI={"capture_exclude": ["/sync/*"]}):
        assert not Client().get("/sync/").has_header("X-Trace-Id")
    with override_settings(FEEDBACK_ASGI={"enabled": False}):
        assert not Client().get("/sync/").has_header("X-Trace-Id")


async def test_concurrent_async_requests_keep_their_own_exchanges(
    async_client: AsyncClient,
) -> None:
    messages = [f"message-{i}" for i in range(20)]
    responses = await asyncio.gather(
        *(async_client.get(f"/async/context/?q={message}") for message in messages)
    )
    for message, response in zip(messages, responses, strict=True):
        assert response.json()["trace_id"] == response["X-Trace-Id"]
        recorded = await aexchange(response["X-Trace-Id"])
        assert (recorded.input, recorded.output) == (message, message[::-1].upper())
