"""``GET /feedback/widget.js`` on every surface: the packaged file, cache headers, ETag, 304."""

from __future__ import annotations

import hashlib
from importlib import resources

import pytest

from feedback_asgi.kit import FeedbackKit
from feedback_asgi.web.assets import WIDGET_PATH, load_asset
from tests.endpoint.apps import SURFACES, Surface, build, client, error_of

WIDGET_URL = "/feedback" + WIDGET_PATH


@pytest.fixture
def kit() -> FeedbackKit:
    return FeedbackKit.for_testing()


@pytest.fixture(params=SURFACES)
def surface(request: pytest.FixtureRequest, kit: FeedbackKit) -> Surface:
    return build(request.param, kit)


def packaged_widget() -> bytes:
    return resources.files("feedback_asgi").joinpath("static", "feedback-widget.js").read_bytes()


def test_widget_is_small_plain_javascript() -> None:
    source = packaged_widget().decode("utf-8")
    assert len(packaged_widget()) < 10_000  # the budget: under 10 KB unminified
    # no module system, no dependency, no HTML strings turned into elements
    for forbidden in ("import ", "require(", "innerHTML", "insertAdjacentHTML", "eval("):
        assert forbidden not in source


async def test_serves_the_packaged_widget_with_cache_headers(surface: Surface) -> None:
    async with client(surface.app) as http:
        response = await http.get(WIDGET_URL)
    assert response.status_code == 200
    assert response.content == packaged_widget()
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["x-content-type-options"] == "nosniff"
    digest = hashlib.sha256(response.content).hexdigest()[:32]
    assert response.headers["etag"] == f'"{digest}"'
    assert "x-trace-id" not in response.headers  # the widget is not an exchange to rate


async def test_matching_etag_gets_304_without_a_body(surface: Surface) -> None:
    etag = load_asset(WIDGET_PATH).etag.decode()
    async with client(surface.app) as http:
        same = await http.get(WIDGET_URL, headers={"If-None-Match": etag})
        weak_in_list = await http.get(WIDGET_URL, headers={"If-None-Match": f'"x", W/{etag}'})
        star = await http.get(WIDGET_URL, headers={"If-None-Match": "*"})
        other = await http.get(WIDGET_URL, headers={"If-None-Match": '"stale"'})
    for response in (same, weak_in_list, star):
        assert response.status_code == 304
        assert response.content == b""
        assert response.headers["etag"] == etag
        assert "content-type" not in response.headers
    assert other.status_code == 200
    assert other.content == packaged_widget()


async def test_head_sends_headers_only_and_other_methods_are_refused(surface: Surface) -> None:
    async with client(surface.app) as http:
        head = await http.head(WIDGET_URL)
        post = await http.post(WIDGET_URL, json={})
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) == len(packaged_widget())
    assert post.status_code == 405
    assert error_of(post)["code"] == "method_not_allowed"
    assert post.headers["allow"] == "GET, HEAD, OPTIONS"


async def test_cross_origin_load_gets_cors_when_the_origin_is_allowed() -> None:
    kit = FeedbackKit.for_testing(allowed_origins=["https://app.example"])
    async with client(build("middleware", kit).app) as http:
        allowed = await http.get(WIDGET_URL, headers={"Origin": "https://app.example"})
        other = await http.get(WIDGET_URL, headers={"Origin": "https://evil.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    # a plain <script src> needs no CORS: the file itself is public
    assert other.status_code == 200
    assert "access-control-allow-origin" not in other.headers
