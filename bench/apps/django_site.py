"""A one-module Django project for ``bench_django``: one JSON view, sync for WSGI, async for ASGI.

``BENCH_FEEDBACK=1`` adds the feedback middleware (and app); otherwise Django runs bare.
``DJANGO_SETTINGS_MODULE=bench.apps.django_site``; ``wsgi``/``asgi`` below are the entry points.
"""

from __future__ import annotations

import os

from django.http import HttpRequest, JsonResponse
from django.urls import path

WITH_FEEDBACK = os.environ.get("BENCH_FEEDBACK") == "1"

SECRET_KEY = "bench-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
USE_TZ = True
ROOT_URLCONF = __name__
DATABASES: dict[str, object] = {}
INSTALLED_APPS = ["feedback_asgi.integrations.django"] if WITH_FEEDBACK else []
MIDDLEWARE = (
    ["feedback_asgi.integrations.django.middleware.FeedbackMiddleware"] if WITH_FEEDBACK else []
)
FEEDBACK_ASGI = {"secret_key": "bench-feedback-secret-0123456789abcdef"}

PAYLOAD = {"answer": "The capital of France is Paris.", "model": "echo-1", "tokens": 7}


def answer_sync(request: HttpRequest) -> JsonResponse:
    return JsonResponse(PAYLOAD)


async def answer_async(request: HttpRequest) -> JsonResponse:
    return JsonResponse(PAYLOAD)


urlpatterns = [path("sync", answer_sync), path("async", answer_async)]


def wsgi() -> object:
    """The WSGI application (``gunicorn 'bench.apps.django_site:wsgi()'``)."""
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


def asgi() -> object:
    """The ASGI application (``uvicorn --factory bench.apps.django_site:asgi``)."""
    from django.core.asgi import get_asgi_application

    return get_asgi_application()
