"""pytest plugin: every Starlette or FastAPI app a peer suite builds gets ``FeedbackMiddleware``.

Loaded with ``-p peer_suites.asgi_inject``; ``PEER_FEEDBACK_MODE`` picks where it goes:

* ``around`` (default): outermost, wrapping the whole stack ``build_middleware_stack`` built
  (``ServerErrorMiddleware``, the user's middleware, ``ExceptionMiddleware``, the router);
* ``inside``: innermost, wrapping the router itself, inside ``ExceptionMiddleware`` (and
  FastAPI's ``AsyncExitStackMiddleware``), as a user's last ``add_middleware`` can not place it.

FastAPI overrides ``build_middleware_stack`` without calling Starlette's, so both classes'
methods are patched (each where it is defined). Each app gets a kit of its own with in-memory
stores: ``FeedbackKit(FeedbackConfig(database_url="memory://", ...))`` (no database, no Redis,
the ordinary background writer).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

MODES = ("around", "inside")
SECRET_KEY = "peer-suites-secret-key-of-at-least-32-characters"

_patched: list[tuple[type, Callable[..., Any]]] = []


def _new_kit() -> Any:
    from feedback_asgi import FeedbackKit
    from feedback_asgi.config import FeedbackConfig

    return FeedbackKit(FeedbackConfig(database_url="memory://", secret_key=SECRET_KEY))


def _wrapping(original: Callable[[Any], Any], mode: str) -> Callable[[Any], Any]:
    from feedback_asgi import FeedbackMiddleware

    def build_middleware_stack(self: Any) -> Any:
        kit = _new_kit()
        if mode == "around":
            return FeedbackMiddleware(original(self), kit=kit)
        # inside: the stack wraps ``self.router`` last; hand it ours around the router
        router = self.router
        self.router = FeedbackMiddleware(router, kit=kit)
        try:
            return original(self)
        finally:
            self.router = router

    build_middleware_stack.__wrapped__ = original  # type: ignore[attr-defined]
    return build_middleware_stack


def install(mode: str) -> None:
    """Patch ``build_middleware_stack`` where Starlette and FastAPI define it."""
    if mode not in MODES:
        raise pytest.UsageError(f"PEER_FEEDBACK_MODE must be one of {MODES}, not {mode!r}")
    classes: list[type] = []
    from starlette.applications import Starlette

    classes.append(Starlette)
    try:
        from fastapi import FastAPI
    except ImportError:
        pass
    else:
        classes.append(FastAPI)
    for cls in classes:
        original = cls.__dict__.get("build_middleware_stack")
        if original is None:
            continue  # inherited: patched on the class that defines it
        _patched.append((cls, original))
        setattr(cls, "build_middleware_stack", _wrapping(original, mode))  # noqa: B010


def uninstall() -> None:
    """Restore the original methods."""
    while _patched:
        cls, original = _patched.pop()
        setattr(cls, "build_middleware_stack", original)  # noqa: B010


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Patch before any test module is collected (apps built at import time included)."""
    if not hasattr(config, "peer_asgi_mode"):
        mode = os.environ.get("PEER_FEEDBACK_MODE", "around")
        install(mode)
        config.peer_asgi_mode = mode  # type: ignore[attr-defined]


def pytest_report_header(config: pytest.Config) -> str:
    """Say in the run's header that the middleware is injected, and where."""
    return f"peer-suites: feedback_asgi.FeedbackMiddleware injected ({config.peer_asgi_mode})"  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    """Undo the patch."""
    uninstall()
