"""pytest plugin: a Django suite's settings get feedback-asgi's app and middleware.

Loaded with ``-p peer_suites.django_inject``, so it is imported before the suite's
``conftest.py`` and before pytest-django reads the settings. Whichever way the suite
configures Django, through a settings module (``--ds``, ``DJANGO_SETTINGS_MODULE``: django-cors-
headers) or ``settings.configure(...)`` in ``pytest_configure`` (Django REST framework), the
settings are amended as they are made, the suite's files stay as they are:

* ``INSTALLED_APPS`` gets ``feedback_asgi.integrations.django`` (its table is created with
  the suite's test database, by migrations or, under ``--no-migrations``, directly);
* ``MIDDLEWARE`` gets ``feedback_asgi.integrations.django.middleware.FeedbackMiddleware``:
  ``PEER_FEEDBACK_MODE=last`` (default) appends it (after ``AuthenticationMiddleware``, where
  the README puts it), ``first`` puts it before every other (outside ``CorsMiddleware``);
* ``FEEDBACK_ASGI`` (unless the suite sets one) selects the in-memory stores and a fixed key.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from django import conf

APP = "feedback_asgi.integrations.django"
MIDDLEWARE = "feedback_asgi.integrations.django.middleware.FeedbackMiddleware"
MODES = ("last", "first")
MODE = os.environ.get("PEER_FEEDBACK_MODE", "last")
if MODE not in MODES:
    raise pytest.UsageError(f"PEER_FEEDBACK_MODE must be one of {MODES}, not {MODE!r}")
OPTIONS = {
    "database_url": "memory://",
    "secret_key": "peer-suites-secret-key-of-at-least-32-characters",
}


def _with(names: Sequence[str] | None, name: str, *, first: bool = False) -> Any:
    """``names`` plus ``name`` at the end (or first), of the same type (list or tuple)."""
    if names is None or name in names:
        return names
    added = [name, *names] if first else [*names, name]
    return added if isinstance(names, list) else tuple(added)


def amend(values: dict[str, Any]) -> None:
    """Add our app, middleware and options to a dict of settings, in place."""
    values["INSTALLED_APPS"] = _with(values.get("INSTALLED_APPS", ()), APP)
    middleware = values.get("MIDDLEWARE")
    if middleware is not None:
        values["MIDDLEWARE"] = _with(middleware, MIDDLEWARE, first=MODE == "first")
    values.setdefault("FEEDBACK_ASGI", dict(OPTIONS))


_original_init: Callable[..., None] = conf.Settings.__init__
_original_configure: Callable[..., None] = conf.LazySettings.configure


def _settings_init(self: conf.Settings, settings_module: str) -> None:
    _original_init(self, settings_module)
    amend(self.__dict__)  # Settings keeps every setting as an instance attribute


def _configure(self: conf.LazySettings, default_settings: Any = conf.global_settings,
               **options: Any) -> None:
    if "MIDDLEWARE" not in options:
        options["MIDDLEWARE"] = list(getattr(default_settings, "MIDDLEWARE", []))
    amend(options)
    _original_configure(self, default_settings, **options)


conf.Settings.__init__ = _settings_init  # type: ignore[method-assign]
conf.LazySettings.configure = _configure  # type: ignore[method-assign]


def pytest_report_header(config: pytest.Config) -> str:
    """Say in the run's header that our app and middleware are injected."""
    return f"peer-suites: {MIDDLEWARE} injected ({MODE} in MIDDLEWARE)"
