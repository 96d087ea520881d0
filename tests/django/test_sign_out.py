"""Django (WSGI, one event loop per request) with Redis: the dashboard cookie signed out on
one kit is refused by another sharing the Redis prefix (and works until then), and the
sign-in limit counts attempts on both."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client, override_settings

from feedback_asgi.dashboard import session
from feedback_asgi.dashboard.routes import LOGIN_ATTEMPTS_PER_MINUTE
from feedback_asgi.integrations.django.conf import reset_kit

ADMIN_TOKEN = "django-sign-out-admin-token-0123456789"
FORM = "application/x-www-form-urlencoded"
ORIGIN = {"HTTP_ORIGIN": "http://testserver", "HTTP_HOST": "testserver"}


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_sign_out_under_wsgi_with_redis(redis_url: str, redis_prefix: str) -> None:
    config = {**settings.FEEDBACK_ASGI, "admin_token": ADMIN_TOKEN, "redis_url": redis_url,
              "redis_key_prefix": redis_prefix, "connect_timeout_seconds": 0.5}
    with override_settings(FEEDBACK_ASGI=config):
        reset_kit()
        client = Client()
        signed = client.post("/feedback/dashboard/login", f"token={ADMIN_TOKEN}",
                             content_type=FORM, **ORIGIN)
        assert signed.status_code == 303, signed.content
        cookie = signed.cookies[session.COOKIE_NAME].value
        jar = {"HTTP_COOKIE": f"{session.COOKIE_NAME}={cookie}"}
        for _ in range(3):  # each request on a loop of its own
            assert Client().get("/feedback/stats", **jar).status_code == 200
        reset_kit()  # another worker: a new kit, the same Redis
        out = Client().post("/feedback/dashboard/logout", **ORIGIN, **jar)
        assert out.status_code == 303, out.content
        reset_kit()
        for _ in range(2):
            assert Client().get("/feedback/stats", **jar).status_code == 401


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_the_sign_in_limit_is_shared_under_wsgi(redis_url: str, redis_prefix: str) -> None:
    config = {**settings.FEEDBACK_ASGI, "admin_token": ADMIN_TOKEN, "redis_url": redis_url,
              "redis_key_prefix": redis_prefix, "connect_timeout_seconds": 0.5}
    statuses = []
    with override_settings(FEEDBACK_ASGI=config):
        for attempt in range(LOGIN_ATTEMPTS_PER_MINUTE + 1):
            if attempt % 2:
                reset_kit()  # every other attempt on another worker's kit
            answer = Client().post("/feedback/dashboard/login", "token=wrong",
                                   content_type=FORM, **ORIGIN)
            statuses.append(answer.status_code)
    assert statuses == [401] * LOGIN_ATTEMPTS_PER_MINUTE + [429]
