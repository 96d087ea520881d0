"""The chat page on Starlette, with sessions: feedback lands under the browser's session.

Run it with ``make demo-starlette`` (uvicorn on http://127.0.0.1:8001, SQLite ``./feedback.db``
unless ``FEEDBACK_ASGI_DATABASE_URL`` says otherwise):

* ``GET /``: the chat page (``index.html`` + ``example_apps/static/chat.js``) under a strict
  Content-Security-Policy; answers stream in and the widget renders under each, with stars.
* ``POST /chat`` ``{"message": "...", "stream": true}``: the deterministic responder's
  answer as Server-Sent Events ending with ``event: feedback``; ``"stream": false`` gives
  JSON with ``trace_id`` and ``feedback_token``.
* ``/feedback/...``: :func:`~feedback_asgi.integrations.starlette.feedback_routes` under a
  ``Mount``, the widget at ``/feedback/widget.js``.

``SessionMiddleware`` (outermost) gives each browser a signed session cookie holding a
``session_id``; ``FeedbackMiddleware`` inside it reads ``scope["session"]["session_id"]``, so
the exchange, its token and the feedback on it carry that session.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from example_apps.responder import MODEL, local_model
from feedback_asgi.context import FeedbackContext
from feedback_asgi.integrations.starlette import feedback_routes
from feedback_asgi.kit import FeedbackKit
from feedback_asgi.middleware import FeedbackMiddleware

PAGE = Path(__file__).with_name("index.html").read_text("utf-8")
STATIC = Path(__file__).parents[1] / "static"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
MAX_MESSAGE = 2000


def create_app(kit: FeedbackKit | None = None, *, session_secret: str | None = None) -> Starlette:
    """The demo app; ``kit`` defaults to one built from ``FEEDBACK_ASGI_*`` variables.

    ``session_secret`` signs the session cookie (default: ``SESSION_SECRET``, else a random
    key, so sessions end when the process does).
    """
    kit = kit if kit is not None else FeedbackKit.from_env()
    secret = session_secret or os.environ.get("SESSION_SECRET") or secrets.token_urlsafe(32)

    async def page(request: Request) -> Response:
        request.session.setdefault("session_id", secrets.token_urlsafe(16))
        return HTMLResponse(PAGE, headers={"Content-Security-Policy": CSP})

    async def answer_events(message: str) -> AsyncIterator[str]:
        async with FeedbackContext(kit.collector, operation="chat") as ctx:
            ctx.set_input(message)
            ctx.set_metadata(model=MODEL, provider="local", project="demo")
            answer = local_model(message)
            for word in answer.split(" "):
                yield f"data: {word}\n\n"
            ctx.set_result(answer)

    async def chat(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(message, str) or not 0 < len(message) <= MAX_MESSAGE:
            return JSONResponse(
                {"error": {"code": "invalid_request", "message": "send {\"message\": \"...\"}",
                           "fields": {"message": f"1-{MAX_MESSAGE} characters"}}},
                status_code=422,
            )
        if body.get("stream", False):
            return StreamingResponse(answer_events(message), media_type="text/event-stream")
        async with FeedbackContext(kit.collector, operation="chat") as ctx:
            ctx.set_input(message)
            ctx.set_metadata(model=MODEL, provider="local", project="demo")
            answer = local_model(message)
            ctx.set_result(answer)
        return JSONResponse({"reply": answer, "model": MODEL, "trace_id": ctx.trace_id,
                             "feedback_token": ctx.feedback_token})

    return Starlette(
        routes=[
            Route("/", page),
            Route("/chat", chat, methods=["POST"]),
            Mount("/feedback", routes=feedback_routes(kit)),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[
            # outermost first: the session exists before the feedback middleware reads it
            Middleware(SessionMiddleware, secret_key=secret, same_site="lax"),
            Middleware(FeedbackMiddleware, kit=kit, serve_endpoint=False),
        ],
    )


app = create_app()
