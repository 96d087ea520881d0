"""System checks (``manage.py check``), with stable ids.

* ``feedback_asgi.E001``: ``USE_TZ`` is off (feedback timestamps are timezone-aware UTC).
* ``feedback_asgi.E002``: ``FEEDBACK_ASGI`` (or a ``FEEDBACK_ASGI_*`` variable) is invalid.
* ``feedback_asgi.W001``: the middleware is listed before ``AuthenticationMiddleware``
  (or ``SessionMiddleware``), so it cannot see ``request.user``/``request.session``.
* ``feedback_asgi.W002``: django-cors-headers is installed, its middleware is not inside ours,
  and ``CORS_EXPOSE_HEADERS`` lacks ``X-Trace-Id`` and ``X-Feedback-Token``: we name them
  only on responses that allow an origin when we see them (a ``CorsMiddleware`` outside ours
  allows it later, and replaces the header with its own list).
* ``feedback_asgi.W003``: no ``secret_key`` for feedback tokens while ``DEBUG`` is off.
* ``feedback_asgi.W004``: the app is installed but its URLs are not mounted.
* ``feedback_asgi.W005``: the URLs are mounted somewhere other than ``FEEDBACK_ASGI["path"]``,
  so the middleware would capture feedback requests as exchanges.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.urls import NoReverseMatch, reverse

from feedback_asgi.core.exceptions import ConfigurationError
from feedback_asgi.integrations.django.conf import conf

__all__ = ["check_middleware_order", "check_settings", "check_urls"]

MIDDLEWARE_PATH = "feedback_asgi.integrations.django.middleware.FeedbackMiddleware"
_BEFORE_US = (
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
)
_EXPOSED = ("x-trace-id", "x-feedback-token")
_CORS_MIDDLEWARE = "corsheaders.middleware.CorsMiddleware"


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E001, E002, W002, W003."""
    found: list[CheckMessage] = []
    if not getattr(settings, "USE_TZ", True):
        found.append(Error(
            "feedback_asgi needs USE_TZ = True: feedback timestamps are timezone-aware (UTC).",
            hint="Set USE_TZ = True in your settings.",
            id="feedback_asgi.E001",
        ))
    try:
        config = conf.config()
    except ConfigurationError as exc:
        found.append(Error(str(exc), hint="Fix FEEDBACK_ASGI or the FEEDBACK_ASGI_* variable.",
                           id="feedback_asgi.E002"))
        config = None
    if apps.is_installed("corsheaders") and not _cors_inside_us():
        exposed = [str(name).lower() for name in getattr(settings, "CORS_EXPOSE_HEADERS", ()) or ()]
        if "*" not in exposed and not all(name in exposed for name in _EXPOSED):
            found.append(Warning(
                "CORS_EXPOSE_HEADERS lacks X-Trace-Id and X-Feedback-Token, and CorsMiddleware "
                "is not inside FeedbackMiddleware (which names them only on responses that "
                "already allow an origin): browsers on other origins cannot read them.",
                hint='Add "X-Trace-Id" and "X-Feedback-Token" to CORS_EXPOSE_HEADERS.',
                id="feedback_asgi.W002",
            ))
    if config is not None and config.secret_key is None and not conf.debug:
        found.append(Warning(
            "No secret key for feedback tokens: each process signs with a random key, so "
            "tokens from one worker or restart are rejected by another.",
            hint='Set FEEDBACK_ASGI = {"secret_key": ...} or FEEDBACK_ASGI_SECRET_KEY '
                 "(32 characters or more).",
            id="feedback_asgi.W003",
        ))
    return found


def _cors_inside_us() -> bool:
    """Whether ``CorsMiddleware`` is listed after ours: we then see its CORS responses."""
    middleware = [str(name) for name in getattr(settings, "MIDDLEWARE", None) or ()]
    return (MIDDLEWARE_PATH in middleware and _CORS_MIDDLEWARE in middleware
            and middleware.index(_CORS_MIDDLEWARE) > middleware.index(MIDDLEWARE_PATH))


def check_middleware_order(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W001."""
    middleware = [str(name) for name in getattr(settings, "MIDDLEWARE", None) or ()]
    if MIDDLEWARE_PATH not in middleware:
        return []
    ours = middleware.index(MIDDLEWARE_PATH)
    late = [name for name in _BEFORE_US if name in middleware and middleware.index(name) > ours]
    if not late:
        return []
    return [Warning(
        f"{MIDDLEWARE_PATH} is listed before {', '.join(late)}: it cannot read "
        "request.user or request.session, so exchanges and tokens carry no user or session.",
        hint="Move FeedbackMiddleware after AuthenticationMiddleware in MIDDLEWARE.",
        id="feedback_asgi.W001",
    )]


def check_urls(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W004, W005."""
    try:
        mounted = reverse("feedback_asgi:submit")
    except NoReverseMatch:
        return [Warning(
            "feedback_asgi is installed but its URLs are not mounted: nothing receives "
            "feedback.",
            hint='Add path("feedback/", include("feedback_asgi.integrations.django.urls")) '
                 "to your ROOT_URLCONF.",
            id="feedback_asgi.W004",
        )]
    except Exception:  # a broken URLconf is reported by Django's own checks
        return []
    try:
        path = conf.config().path
    except ConfigurationError:
        return []  # E002 says why
    if mounted.rstrip("/") != path.rstrip("/"):
        return [Warning(
            f"The feedback URLs are mounted at {mounted!r} but FEEDBACK_ASGI['path'] is "
            f"{path!r}: the middleware would capture feedback requests as exchanges.",
            hint=f'Set FEEDBACK_ASGI["path"] = {mounted.rstrip("/")!r}.',
            id="feedback_asgi.W005",
        )]
    return []
