"""Starlette adapter: the feedback routes for ``Mount(path, routes=feedback_routes())``.

::

    from starlette.routing import Mount
    from feedback_asgi.integrations.starlette import feedback_routes

    app = Starlette(routes=[..., Mount("/feedback", routes=feedback_routes(kit))])
    app.add_middleware(FeedbackMiddleware, kit=kit, serve_endpoint=False)

The routes hand every request below the mount to the neutral endpoint, so the JSON (and
every error: 404, 405 included) is the same as what the middleware serves. Starlette
redirects ``/feedback`` to ``/feedback/`` (307, method kept) because ``Mount`` matches
below its path; the middleware and the FastAPI router answer ``/feedback`` directly.
"""

from __future__ import annotations

try:
    from starlette.routing import BaseRoute, Route
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "feedback_asgi.integrations.starlette needs Starlette: "
        "pip install 'feedback-asgi[starlette]'"
    ) from exc

from typing import TYPE_CHECKING

from feedback_asgi.web.endpoint import FeedbackEndpoint

if TYPE_CHECKING:
    from feedback_asgi.kit import FeedbackKit

__all__ = ["feedback_routes"]


def feedback_routes(kit: FeedbackKit | None = None) -> list[BaseRoute]:
    """Routes for ``Mount(path, routes=...)``: ``POST /``, ``GET /sessions/{id}``, ``GET /health``.

    Without ``kit`` they use the process's default kit (the middleware's default too).
    """
    # prefix="": below a Mount the route is the path after root_path, nothing else stripped
    endpoint = FeedbackEndpoint(kit, prefix="")
    return [
        Route("/", endpoint, name="feedback_submit"),
        Route("/{path:path}", endpoint, name="feedback_routes"),
    ]
