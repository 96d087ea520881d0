"""The tiny Django project the integration tests run in (SQLite; PostgreSQL as "postgres")."""

from __future__ import annotations

import os
import tempfile
import uuid

from tests import services

BASE = os.path.join(tempfile.gettempdir(), f"fa_django_{os.getpid()}")

SECRET_KEY = "django-insecure-test-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "Europe/Paris"  # not UTC, so a naive/aware mix-up would show
ROOT_URLCONF = "tests.django.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "feedback_asgi.integrations.django",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "feedback_asgi.integrations.django.middleware.FeedbackMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

_SQLITE_OPTIONS = {
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
}

DATABASES: dict[str, dict[str, object]] = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE + ".sqlite3",
        # a file, not memory: the async ORM works from other threads, which need to share it
        "TEST": {"NAME": BASE + f"_{uuid.uuid4().hex[:8]}_test.sqlite3"},
        "OPTIONS": _SQLITE_OPTIONS,
    },
}

# a database that is never up (nothing listens on port 1): outage tests point a store at it
DATABASES["dead"] = {
    "ENGINE": "django.db.backends.postgresql",
    "NAME": "nowhere",
    "USER": "postgres",
    "HOST": "127.0.0.1",
    "PORT": 1,
    "OPTIONS": {"connect_timeout": 1},
}

if services.reachable(services.PG_HOST, services.PG_PORT):
    # Django creates test_<NAME> for the tests that use this alias and drops it afterwards
    DATABASES["postgres"] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": services.unique_name("fa_django"),
        "USER": "postgres",
        "HOST": services.PG_HOST,
        "PORT": services.PG_PORT,
        "OPTIONS": {"connect_timeout": 3},
    }

FEEDBACK_ASGI = {
    "secret_key": "feedback-asgi-django-tests-secret-key-0123456789",
    "capture_request_limit": 4096,
    "capture_response_limit": 4096,
}

STATIC_URL = "/static/"
