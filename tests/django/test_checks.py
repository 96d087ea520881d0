"""System checks: each id appears exactly when its condition holds, also via ``manage.py check``."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from feedback_asgi.integrations.django.checks import (
    MIDDLEWARE_PATH,
    check_middleware_order,
    check_settings,
    check_urls,
)
from tests.django import settings as test_settings


def ids(*found: list[object]) -> list[str]:
    return sorted(str(getattr(message, "id", "")) for messages in found for message in messages)


def run_all() -> list[str]:
    return ids(check_settings(), check_middleware_order(), check_urls())


def test_the_test_project_is_clean() -> None:
    assert run_all() == []
    out = StringIO()
    call_command("check", stdout=out)
    assert "feedback_asgi" not in out.getvalue()


@override_settings(MIDDLEWARE=[MIDDLEWARE_PATH, *test_settings.MIDDLEWARE[:-1]])
def test_w001_middleware_before_authentication() -> None:
    assert run_all() == ["feedback_asgi.W001"]


@override_settings(
    INSTALLED_APPS=[*test_settings.INSTALLED_APPS, "corsheaders"],
    CORS_EXPOSE_HEADERS=["X-Other"],
)
def test_w002_cors_expose_headers_without_ours() -> None:
    assert run_all() == ["feedback_asgi.W002"]
    out = StringIO()
    call_command("check", stdout=out, stderr=out)
    assert "feedback_asgi.W002" in out.getvalue()
    with override_settings(CORS_EXPOSE_HEADERS=["X-Other", "x-trace-id", "X-Feedback-Token"]):
        assert run_all() == []


CORS_FIRST = ["corsheaders.middleware.CorsMiddleware", *test_settings.MIDDLEWARE]


@override_settings(INSTALLED_APPS=[*test_settings.INSTALLED_APPS, "corsheaders"],
                   MIDDLEWARE=CORS_FIRST, CORS_ALLOW_ALL_ORIGINS=True)
def test_cors_headers_outside_us_expose_only_its_own_list() -> None:
    from django.test import Client

    # we never see its CORS response, so we add nothing (W002 warns about it)...
    response = Client().get("/sync/", HTTP_ORIGIN="https://app.example")
    assert not response.has_header("Access-Control-Expose-Headers")
    assert run_all() == ["feedback_asgi.W002"]
    with override_settings(CORS_EXPOSE_HEADERS=["X-Other"]):
        response = Client().get("/sync/", HTTP_ORIGIN="https://app.example")
        assert response["Access-Control-Expose-Headers"] == "X-Other"
    with override_settings(CORS_EXPOSE_HEADERS=["X-Other", "X-Trace-Id", "X-Feedback-Token"]):
        # ...and the documented fix
        response = Client().get("/sync/", HTTP_ORIGIN="https://app.example")
        assert "X-Feedback-Token" in response["Access-Control-Expose-Headers"]


def test_w002_is_silent_without_corsheaders_or_with_our_names() -> None:
    with override_settings(CORS_EXPOSE_HEADERS=["X-Other"]):
        assert "feedback_asgi.W002" not in run_all()


@override_settings(FEEDBACK_ASGI={})
def test_w003_no_secret_key_outside_debug() -> None:
    assert run_all() == ["feedback_asgi.W003"]
    with override_settings(DEBUG=True):
        assert run_all() == []


@override_settings(ROOT_URLCONF="tests.django.urls_without_feedback")
def test_w004_urls_not_mounted() -> None:
    assert run_all() == ["feedback_asgi.W004"]


@override_settings(FEEDBACK_ASGI={**test_settings.FEEDBACK_ASGI, "path": "/api/feedback"})
def test_w005_urls_mounted_elsewhere_than_the_path() -> None:
    assert run_all() == ["feedback_asgi.W005"]


@override_settings(USE_TZ=False, FEEDBACK_ASGI={"rating_min": 5, "rating_max": 1})
def test_errors_e001_e002_fail_manage_py_check() -> None:
    assert run_all() == ["feedback_asgi.E001", "feedback_asgi.E002"]
    with pytest.raises(SystemCheckError) as failure:
        call_command("check")
    assert "feedback_asgi.E001" in str(failure.value)
    assert "feedback_asgi.E002" in str(failure.value)


@override_settings(FEEDBACK_ASGI={})
def test_warnings_show_in_manage_py_check_output() -> None:
    err = StringIO()
    call_command("check", stderr=err, stdout=err)
    assert "feedback_asgi.W003" in err.getvalue()
