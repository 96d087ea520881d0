"""A Django app behaves as without ``FeedbackMiddleware``, apart from our two headers (plus
``Access-Control-Expose-Headers`` on CORS responses) and one final SSE event.

Each test here is a break that Django REST framework's or django-cors-headers' own suites
found with the middleware installed: the user loaded for views that never asked for it, the
per-site cache failing to pickle, a broken request body changing exception, a bad settings
dict failing per request, and expose headers on responses that are not CORS responses.
"""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection
from django.http import HttpRequest, HttpResponse, UnreadablePostError
from django.test import AsyncClient, Client, RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext

from feedback_asgi.core.records import Exchange
from feedback_asgi.integrations.django.conf import get_kit
from tests.django import settings as test_settings
from tests.django.views import CALLS

OURS = "feedback_asgi.integrations.django.middleware.FeedbackMiddleware"
WITHOUT_US = [name for name in test_settings.MIDDLEWARE if name != OURS]
OUR_HEADERS = frozenset({"x-trace-id", "x-feedback-token"})


def stored() -> int:
    """How many exchanges the (in-memory) exchange store keeps."""
    return len(get_kit().exchanges)  # type: ignore[arg-type]


def verified(response: Any) -> Any:
    """The claims of the response's token, checked against its trace id."""
    return get_kit().signer.verify(response["X-Feedback-Token"], response["X-Trace-Id"]).unwrap()


def exchange_of(response: Any) -> Exchange:
    found = async_to_sync(get_kit().exchanges.get)(response["X-Trace-Id"])
    assert found is not None
    return found


# 7. the user and the session are used only when the app loaded them


def _client(kind: str, cookies: Any) -> Callable[[str], Any]:
    """GET through a new sync or async test client with ``cookies``, called from sync code:
    an async chain's thread-sensitive ORM calls then run in this thread, where the queries
    are counted."""
    client: Any = AsyncClient() if kind == "async" else Client()
    client.cookies = copy.deepcopy(cookies)
    return async_to_sync(client.get) if kind == "async" else client.get


def _observed(kind: str, cookies: Any) -> tuple[list[tuple[str, str]], str, list[str]]:
    """The response headers (without ours), its cookies and the SQL run for one GET."""
    get = _client(kind, cookies)
    with CaptureQueriesContext(connection) as queries:
        response = get(f"/public/{kind}/")
    assert response.status_code == 200
    headers = [(name, value) for name, value in response.items() if name.lower() not in OUR_HEADERS]
    return headers, response.cookies.output(), [query["sql"] for query in queries.captured_queries]


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("visitor", ["anonymous", "logged-in", "stale-password-hash"])
def test_a_view_that_never_touches_the_user_sees_no_difference(kind: str, visitor: str) -> None:
    login = Client()
    if visitor != "anonymous":
        user = User.objects.create_user("ada", password="pw-123456")
        login.force_login(user)
        if visitor == "stale-password-hash":
            user.set_password("changed-elsewhere")  # Django flushes such a session when loaded
            user.save()
    with override_settings(MIDDLEWARE=WITHOUT_US):
        without_us = _observed(kind, login.cookies)
    with_us = _observed(kind, login.cookies)
    assert with_us == without_us  # no Vary: Cookie, no query, no session flushed
    assert with_us[2] == []


@pytest.mark.django_db
def test_a_view_that_never_touches_the_user_gets_an_anonymous_token() -> None:
    client = Client()
    client.force_login(User.objects.create_user("ada", password="pw-123456"))
    response = client.get("/public/sync/")
    assert verified(response).anonymous
    assert exchange_of(response).user_id is None


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_view_that_used_the_user_gets_a_token_bound_to_it(kind: str) -> None:
    user = User.objects.create_user("ada", password="pw-123456")
    login = Client()
    login.force_login(user)
    path = "/whoami/" if kind == "async" else "/whoami/sync/"  # auser() / request.user
    response = _client(kind, login.cookies)(path)
    assert response.json() == {"user": "ada"}
    assert not verified(response).anonymous
    assert exchange_of(response).user_id == str(user.pk)


# 8. Django's per-site cache, with us between its two middlewares

UPDATE_CACHE = "django.middleware.cache.UpdateCacheMiddleware"
FETCH_FROM_CACHE = "django.middleware.cache.FetchFromCacheMiddleware"


def locmem(location: str) -> dict[str, Any]:
    """A LocMemCache of its own (instances with one location share their entries)."""
    return {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                        "LOCATION": f"feedback-asgi-{location}"}}


def _cached_twice() -> tuple[Any, Any]:
    """Two GETs of a cacheable page; the view runs for the first only."""
    caches["default"].clear()
    CALLS["public_sync"] = 0
    first, second = Client().get("/public/sync/"), Client().get("/public/sync/")
    assert first.status_code == second.status_code == 200
    assert CALLS["public_sync"] == 1  # the second came from the cache
    assert second.content == first.content
    return first, second


@override_settings(CACHES=locmem("below-us"),
                   MIDDLEWARE=[UPDATE_CACHE, *WITHOUT_US, OURS, FETCH_FROM_CACHE])
def test_the_per_site_cache_works_and_a_replay_through_us_is_tagged_fresh() -> None:
    first, second = _cached_twice()
    # FetchFromCacheMiddleware answered below us: a new answer, with its own trace and token
    assert second["X-Trace-Id"] != first["X-Trace-Id"]
    assert verified(second).trace_id == second["X-Trace-Id"]
    assert exchange_of(second).status == 200
    assert stored() == 2


@override_settings(CACHES=locmem("above-us"),
                   MIDDLEWARE=[UPDATE_CACHE, *WITHOUT_US, FETCH_FROM_CACHE, OURS])
def test_a_response_replayed_from_above_us_carries_none_of_our_headers() -> None:
    first, second = _cached_twice()
    assert first.has_header("X-Trace-Id")
    # we never saw the replay: no token for another request's exchange, none of our own
    assert not second.has_header("X-Trace-Id")
    assert not second.has_header("X-Feedback-Token")
    assert stored() == 1


@pytest.mark.django_db  # response.close() sends request_finished
def test_a_pickled_response_holds_nothing_of_ours() -> None:
    from feedback_asgi.integrations.django.middleware import FeedbackMiddleware
    from tests.django.views import public_sync

    response = FeedbackMiddleware(public_sync)(RequestFactory().get("/public/sync/"))
    assert response.has_header("X-Feedback-Token")
    data = pickle.dumps(response)  # what a cache does
    assert b"feedback_asgi" not in data  # a cache entry never needs this package to load
    assert response["X-Feedback-Token"].encode() not in data
    replay = pickle.loads(data)
    assert not replay.has_header("X-Trace-Id")
    assert replay.content == response.content
    replay.close()  # the copy's closers do nothing
    assert stored() == 0
    response.close()
    assert stored() == 1


# 9. a request body that cannot be read


class _GoneInput:
    """A ``wsgi.input`` whose client went away: every read raises ``error``."""

    def __init__(self, error: OSError) -> None:
        self.error = error

    def read(self, size: int = -1) -> bytes:
        raise self.error

    readline = read


def _outcome(chain: Callable[[HttpRequest], HttpResponse], error: OSError) -> bytes:
    environ: dict[str, Any] = {"wsgi.input": _GoneInput(error)}
    request = RequestFactory().generic("POST", "/echo/", b'{"question": "why?"}',
                                       content_type="application/json", **environ)
    return chain(request).content


@pytest.mark.parametrize("error", [OSError("connection reset"), UnreadablePostError("gone")])
@pytest.mark.parametrize("access", ["body", "read", "POST"])
def test_an_unreadable_body_reaches_the_view_as_without_us(error: OSError, access: str) -> None:
    from feedback_asgi.integrations.django.middleware import FeedbackMiddleware

    def view(request: HttpRequest) -> HttpResponse:
        try:
            if access == "POST":
                found: Any = dict(request.POST)
            else:
                found = request.body if access == "body" else request.read()
        except Exception as exc:
            return HttpResponse(f"{type(exc).__name__}: {exc}")
        return HttpResponse(repr(found))

    without_us = _outcome(view, error)
    assert _outcome(FeedbackMiddleware(view), error) == without_us
    if access != "POST":
        assert without_us == f"UnreadablePostError: {error}".encode()


# 10. an invalid FEEDBACK_ASGI fails at startup


@override_settings(FEEDBACK_ASGI={"capture_request_limit": "lots"})
@pytest.mark.parametrize("handler", [WSGIHandler, ASGIHandler])
def test_an_invalid_settings_dict_fails_at_startup_naming_the_key(handler: type[Any]) -> None:
    # Django builds the middleware chain when its handler loads, before any request
    with pytest.raises(ImproperlyConfigured, match="capture_request_limit"):
        handler()


# 11. Access-Control-Expose-Headers only on CORS responses

CORS = "corsheaders.middleware.CorsMiddleware"
WITH_CORSHEADERS = [*test_settings.INSTALLED_APPS, "corsheaders"]


def _exposed(response: Any) -> list[str] | None:
    value = response.get("Access-Control-Expose-Headers")
    return None if value is None else [name.strip() for name in value.split(",")]


@override_settings(INSTALLED_APPS=WITH_CORSHEADERS, MIDDLEWARE=[CORS, *test_settings.MIDDLEWARE],
                   CORS_ALLOWED_ORIGINS=["https://example.com"])
def test_corsheaders_outside_us_keeps_its_own_expose_headers() -> None:
    # django-cors-headers' test_get_dont_expose_headers, with us installed
    allowed = Client().get("/public/sync/", HTTP_ORIGIN="https://example.com")
    assert allowed["Access-Control-Allow-Origin"] == "https://example.com"
    assert _exposed(allowed) is None
    refused = Client().get("/public/sync/", HTTP_ORIGIN="https://elsewhere.example")
    assert not refused.has_header("Access-Control-Allow-Origin")
    assert _exposed(refused) is None
    assert refused.has_header("X-Feedback-Token")
    with override_settings(CORS_EXPOSE_HEADERS=["X-Other", "X-Trace-Id", "X-Feedback-Token"]):
        # what the docs (and check W002) tell such a project to set
        allowed = Client().get("/public/sync/", HTTP_ORIGIN="https://example.com")
        assert _exposed(allowed) == ["X-Other", "X-Trace-Id", "X-Feedback-Token"]


@override_settings(INSTALLED_APPS=WITH_CORSHEADERS, MIDDLEWARE=[*test_settings.MIDDLEWARE, CORS],
                   CORS_ALLOWED_ORIGINS=["https://example.com"])
def test_a_cors_response_we_see_exposes_our_headers_and_nothing_else_does() -> None:
    allowed = Client().get("/public/sync/", HTTP_ORIGIN="https://example.com")
    assert _exposed(allowed) == ["X-Trace-Id", "X-Feedback-Token"]
    with override_settings(CORS_EXPOSE_HEADERS=["X-Other"]):
        allowed = Client().get("/public/sync/", HTTP_ORIGIN="https://example.com")
        assert _exposed(allowed) == ["X-Other", "X-Trace-Id", "X-Feedback-Token"]
    refused = Client().get("/public/sync/", HTTP_ORIGIN="https://elsewhere.example")
    assert _exposed(refused) is None
    assert _exposed(Client().get("/public/sync/")) is None


@override_settings(INSTALLED_APPS=WITH_CORSHEADERS, MIDDLEWARE=[CORS, *test_settings.MIDDLEWARE])
def test_w002_when_corsheaders_outside_us_does_not_expose_our_headers() -> None:
    from feedback_asgi.integrations.django.checks import check_settings

    def found() -> list[str]:
        return [str(message.id) for message in check_settings()]

    assert found() == ["feedback_asgi.W002"]  # nothing exposes them: we never see a CORS answer
    with override_settings(CORS_EXPOSE_HEADERS=["X-Trace-Id", "X-Feedback-Token"]):
        assert found() == []
    with override_settings(MIDDLEWARE=[*test_settings.MIDDLEWARE, CORS]):
        assert found() == []  # inside us: we merge our names into its CORS answers


# only answers are captured


@pytest.mark.parametrize("status", [204, 205, 206, 301, 304, 400, 404, 500])
def test_a_response_that_is_no_answer_passes_untouched(status: int) -> None:
    with override_settings(MIDDLEWARE=WITHOUT_US):
        without_us = Client().get(f"/status/{status}/")
    response = Client().get(f"/status/{status}/")
    assert response.status_code == status
    assert list(response.items()) == list(without_us.items())
    assert stored() == 0


@pytest.mark.parametrize("status", [200, 201, 203])
def test_an_answer_is_tagged_and_stored(status: int) -> None:
    response = Client().get(f"/status/{status}/")
    assert verified(response).trace_id == response["X-Trace-Id"]
    assert stored() == 1


def test_a_view_exception_stores_nothing() -> None:
    from feedback_asgi.integrations.django.middleware import FeedbackMiddleware

    failure = RuntimeError("view failed")

    def view(request: HttpRequest) -> HttpResponse:
        raise failure

    with pytest.raises(RuntimeError) as raised:
        FeedbackMiddleware(view)(RequestFactory().get("/boom/"))
    assert raised.value is failure
    response = Client(raise_request_exception=False).get("/boom/")
    assert response.status_code == 500
    assert not response.has_header("X-Trace-Id")
    assert stored() == 0


# the final SSE event


def _events(ending: str) -> tuple[Any, bytes]:
    response: Any = Client().get(f"/sse/ending/{ending}/")
    return response, b"".join(response.streaming_content)  # the test client closes it


@pytest.mark.parametrize(("ending", "sent"), [("boundary", b"data: two\n\n"),
                                              ("crlf", b"data: two\r\n\r\n")])
def test_a_stream_ending_between_events_gets_our_event_right_after(ending: str, sent: bytes) -> None:
    response, body = _events(ending)
    ours = body.removeprefix(b"data: one\n\n" + sent)
    assert ours.startswith(b"event: feedback\n")  # no separator of ours before it
    payload = json.loads(ours.split(b"data: ", 1)[1])
    assert payload == {"trace_id": response["X-Trace-Id"], "token": response["X-Feedback-Token"]}


@pytest.mark.parametrize("ending", ["unfinished", "one-newline"])
def test_a_stream_ending_inside_an_event_gets_nothing_appended(ending: str) -> None:
    from tests.django.views import SSE_ENDINGS

    response, body = _events(ending)
    assert body == b"data: one\n\n" + SSE_ENDINGS[ending].encode()  # a browser drops that event
    assert response.has_header("X-Feedback-Token")


# 3 (the ASGI item, same rule here): an app's own X-Trace-Id is kept


def test_an_apps_own_trace_id_is_kept_and_the_token_names_our_response() -> None:
    response = Client().get("/own-trace/")
    assert response["X-Trace-Id"] == "app-chosen-7"
    token = response["X-Feedback-Token"]
    claims = get_kit().signer.verify(token).unwrap()
    assert claims.trace_id == token.split(".")[3] != "app-chosen-7"
    assert async_to_sync(get_kit().exchanges.get)(claims.trace_id) is not None
    cached = pickle.loads(pickle.dumps(response.headers))  # a cache keeps the app's, not ours
    assert cached["X-Trace-Id"] == "app-chosen-7"
    assert "X-Feedback-Token" not in cached
