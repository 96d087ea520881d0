"""The widget through the Django URLs: same bytes and cache headers as the ASGI endpoint."""

from __future__ import annotations

from importlib import resources

import pytest
from django.test import AsyncClient, Client
from django.urls import reverse

from feedback_asgi.web.assets import WIDGET_PATH, load_asset


def packaged_widget() -> bytes:
    return resources.files("feedback_asgi").joinpath("static", "feedback-widget.js").read_bytes()


def test_url_name_points_below_the_feedback_path() -> None:
    assert reverse("feedback_asgi:widget") == "/feedback" + WIDGET_PATH


@pytest.mark.django_db
def test_serves_the_widget_with_etag_and_304() -> None:
    client = Client()
    response = client.get(reverse("feedback_asgi:widget"))
    assert response.status_code == 200
    assert response.content == packaged_widget()
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["Cache-Control"] == "public, max-age=300"
    assert response["ETag"] == load_asset(WIDGET_PATH).etag.decode()
    assert "X-Trace-Id" not in response  # not an exchange to rate
    again = client.get(reverse("feedback_asgi:widget"), HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == response["ETag"]


@pytest.mark.django_db
async def test_async_client_head_and_wrong_method() -> None:
    client = AsyncClient()
    head = await client.head("/feedback/widget.js")
    post = await client.post("/feedback/widget.js", b"{}", content_type="application/json")
    assert head.status_code == 200
    assert head.content == b""
    assert head["ETag"] == load_asset(WIDGET_PATH).etag.decode()
    assert post.status_code == 405
    assert post.json()["error"]["code"] == "method_not_allowed"
