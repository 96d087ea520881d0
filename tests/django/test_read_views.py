"""Django: the read/admin routes serve the endpoint's JSON to staff only; submitters edit their own."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from feedback_asgi.integrations.django.conf import get_kit


def post(client: Client, trace: str, subject: str, value: Any = 4) -> str:
    token = get_kit().signer.sign(trace, subject)
    response = client.post("/feedback/", json.dumps({"trace_id": trace, "type": "rating",
                                                      "value": value}),
                           content_type="application/json", HTTP_X_FEEDBACK_TOKEN=token)
    assert response.status_code == 201, response.content
    return str(response.json()["feedback_id"])


@pytest.mark.django_db(transaction=True)
def test_staff_only_read_routes_and_owner_edits() -> None:
    anonymous = Client()
    item_id = post(anonymous, "dj-1", "alice", value=2)
    post(anonymous, "dj-2", "bob", value=4)
    routes = ["/feedback/stats?window=1h", "/feedback/stats/timeseries?window=2h&interval=hour",
              "/feedback/?limit=1", f"/feedback/{item_id}"]
    member = Client()
    member.force_login(User.objects.create_user("member", password="pw-123456"))
    staff = Client()
    staff.force_login(User.objects.create_user("staff", password="pw-123456", is_staff=True))
    for route in routes:
        assert anonymous.get(route).status_code == 401, route
        assert member.get(route).status_code == 403, route
        assert staff.get(route).status_code == 200, route
    stats = staff.get("/feedback/stats?window=1h&by=model").json()
    assert stats["totals"]["average_rating"] == 3.0
    page = staff.get("/feedback/?limit=1").json()
    assert len(page["items"]) == 1
    assert page["next_cursor"]
    second = staff.get(f"/feedback/?limit=1&cursor={page['next_cursor']}").json()
    assert second["items"][0]["id"] != page["items"][0]["id"]
    # the submitter's own token edits and retracts; another submitter's does not
    mine = {"HTTP_X_FEEDBACK_TOKEN": get_kit().signer.sign("dj-1", "alice")}
    theirs = {"HTTP_X_FEEDBACK_TOKEN": get_kit().signer.sign("dj-1", "mallory")}
    # another submitter's token sees no such item
    assert anonymous.patch(f"/feedback/{item_id}", json.dumps({"value": 1}),
                           content_type="application/json", **theirs).status_code == 404
    edited = anonymous.put(f"/feedback/{item_id}", json.dumps({"value": 5}),
                           content_type="application/json", **mine)
    assert edited.status_code == 200, edited.content
    assert staff.get("/feedback/stats?window=1h").json()["totals"]["average_rating"] == 4.5
    assert anonymous.delete(f"/feedback/{item_id}", **mine).status_code == 204
    assert staff.get("/feedback/stats?window=1h").json()["totals"]["total_count"] == 1


@pytest.mark.django_db(transaction=True)
def test_staff_edits_need_the_csrf_token() -> None:
    item_id = post(Client(), "dj-3", "alice")
    staff = Client(enforce_csrf_checks=True)
    staff.force_login(User.objects.create_user("boss", password="pw-123456", is_staff=True))
    forged = staff.delete(f"/feedback/{item_id}")
    assert forged.status_code == 403  # cookie rights do not count without the CSRF token
    assert forged.json()["error"]["code"] == "forbidden"
    assert staff.get(f"/feedback/{item_id}").json()["current_id"] == item_id
