"""The feedback views: same JSON as the ASGI endpoint, tokens instead of CSRF, staff reads."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import AsyncClient, Client, override_settings

from feedback_asgi.integrations.django.conf import get_kit, set_kit
from feedback_asgi.integrations.django.models import AiFeedback
from feedback_asgi.integrations.django.store import DjangoFeedbackStore
from feedback_asgi.kit import FeedbackKit


def post_feedback(client: Client, token: str | None, trace_id: str, **body: Any) -> Any:
    headers = {"HTTP_X_FEEDBACK_TOKEN": token} if token else {}
    payload = {"trace_id": trace_id, "type": "thumbs", "value": 1, **body}
    return client.post("/feedback/", json.dumps(payload), content_type="application/json",
                       **headers)


@pytest.mark.django_db(transaction=True)
def test_token_post_needs_no_csrf_cookie_and_stores_the_rated_exchange() -> None:
    client = Client(enforce_csrf_checks=True)
    answer = client.get("/sync/?q=hello")
    trace = answer["X-Trace-Id"]
    response = post_feedback(client, answer["X-Feedback-Token"], trace, comment="good")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "success"
    row = AiFeedback.objects.get(id=body["feedback_id"])
    assert (row.kind, row.thumbs, row.trace_id, row.model) == ("thumbs", 1, trace, "echo-1")
    assert (row.rated_input, row.rated_output, row.comment) == ("hello", "OLLEH", "good")
    # one vote per person: a second vote supersedes the first
    again = post_feedback(client, answer["X-Feedback-Token"], trace, value=-1)
    assert again.status_code == 201
    assert AiFeedback.objects.filter(trace_id=trace, is_live=True).get().thumbs == -1


@pytest.mark.django_db(transaction=True)
def test_post_without_token_is_refused_by_the_token_not_by_csrf() -> None:
    client = Client(enforce_csrf_checks=True)
    response = post_feedback(client, None, "abc")
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"code", "message", "fields"}
    forged = post_feedback(client, "v1.x.1.abc..forged", "abc")
    assert forged.status_code in (400, 401, 403)
    assert AiFeedback.objects.count() == 0


@pytest.mark.django_db
def test_app_views_keep_their_csrf_protection() -> None:
    response = Client(enforce_csrf_checks=True).post("/form/", {"a": "b"})
    assert response.status_code == 403


@pytest.mark.django_db(transaction=True)
def test_errors_have_the_endpoint_shape() -> None:
    client = Client()
    bad_json = client.post("/feedback/", "{nope", content_type="application/json")
    assert bad_json.status_code == 400
    assert bad_json.json()["error"]["code"] == "invalid_json"
    wrong_type = client.post("/feedback/", "x", content_type="text/plain")
    assert wrong_type.status_code == 415
    assert client.put("/feedback/").status_code == 405
    assert client.get("/feedback/").status_code == 401  # the listing: staff only
    missing = client.get("/feedback/nowhere/else")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    too_big = client.post("/feedback/", "[" + "1," * 40_000 + "1]", content_type="application/json")
    assert too_big.status_code == 413


@pytest.mark.django_db(transaction=True)
async def test_async_client_post_and_health(async_client: AsyncClient) -> None:
    answer = await async_client.get("/async/")
    response = await async_client.post(
        "/feedback/",
        {"trace_id": answer["X-Trace-Id"], "type": "rating", "value": 4},
        content_type="application/json",
        headers={"X-Feedback-Token": answer["X-Feedback-Token"]},
    )
    assert response.status_code == 201, response.content
    assert await AiFeedback.objects.filter(rating=4.0).acount() == 1
    health = await async_client.get("/feedback/health")
    assert health.status_code == 200
    assert health.json()["database"] == "ok"  # details for staff only


@pytest.mark.django_db(transaction=True)
def test_session_list_is_the_callers_own_or_staffs() -> None:
    owner = Client()
    owner.force_login(User.objects.create_user("owner", password="pw-123456"))
    answer = owner.get("/whoami/sync/")  # a view that used request.user: a token bound to it
    token = answer["X-Feedback-Token"]
    assert post_feedback(owner, token, answer["X-Trace-Id"]).status_code == 201
    session_id = AiFeedback.objects.get().session_id
    assert session_id is not None
    mine = owner.get(f"/feedback/sessions/{session_id}")
    assert mine.status_code == 200
    assert [item["value"] for item in mine.json()] == [1]
    stranger = Client()
    assert stranger.get(f"/feedback/sessions/{session_id}").status_code == 401
    staff = Client()
    staff.force_login(User.objects.create_user("staff", password="pw-123456", is_staff=True))
    assert len(staff.get(f"/feedback/sessions/{session_id}").json()) == 1


@pytest.mark.django_db
def test_reader_required_allows_staff_only() -> None:
    client = Client()
    assert client.get("/staff-only/").status_code == 401
    client.force_login(User.objects.create_user("plain", password="pw-123456"))
    assert client.get("/staff-only/").status_code == 403
    client.force_login(User.objects.create_user("boss", password="pw-123456", is_staff=True))
    assert client.get("/staff-only/").json() == {"secret": "figures"}


def test_storage_down_the_app_answers_and_feedback_is_503(django_db_blocker: Any) -> None:
    # no test database: the "dead" alias is reached for real (and refuses connections)
    with django_db_blocker.unblock():
        _storage_down()


def _storage_down() -> None:
    set_kit(FeedbackKit(get_kit().config, store=DjangoFeedbackStore(using="dead"),
                        synchronous_writer=True))
    client = Client()
    answer = client.get("/sync/?q=still")
    assert answer.status_code == 200
    assert answer.json()["answer"] == "LLITS"
    response = post_feedback(client, answer["X-Feedback-Token"], answer["X-Trace-Id"])
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "storage_unavailable"
    assert client.get("/feedback/health").status_code == 503


@override_settings(FEEDBACK_ASGI={"secret_key": "k" * 40, "redis_url": "redis://127.0.0.1:1/0",
                                  "connect_timeout_seconds": 0.5})
def test_redis_down_the_app_still_answers() -> None:
    client = Client()
    for _ in range(3):
        response = client.get("/sync/?q=abc")
        assert response.status_code == 200
        assert response.has_header("X-Feedback-Token")


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_exchanges_through_redis_under_wsgi(redis_url: str, redis_prefix: str) -> None:
    config = {"secret_key": "k" * 40, "redis_url": redis_url, "redis_key_prefix": redis_prefix}
    with override_settings(FEEDBACK_ASGI=config):
        client = Client()
        answer = client.get("/sync/?q=redis")
        trace = answer["X-Trace-Id"]
        exchanges: Any = get_kit().exchanges
        for _ in range(200):  # written by the background loop, not the request thread
            if exchanges.pending == 0:
                break
            time.sleep(0.01)
        response = post_feedback(client, answer["X-Feedback-Token"], trace)
        assert response.status_code == 201, response.content
        row = AiFeedback.objects.get(id=response.json()["feedback_id"])
        assert (row.model, row.rated_input, row.rated_output) == ("echo-1", "redis", "SIDER")
