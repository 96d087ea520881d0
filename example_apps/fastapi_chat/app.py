"""A small FastAPI chat app that collects feedback on its answers.

Run it with ``make demo`` (uvicorn on http://127.0.0.1:8000, SQLite ``./feedback.db``):

* ``POST /chat`` ``{"message": "...", "stream": false}``: the answer of a deterministic local
  "model", wrapped in ``FeedbackContext`` so the stored exchange holds the message and the
  answer (not the raw HTTP bodies). The response carries ``X-Trace-Id`` and
  ``X-Feedback-Token``; with ``"stream": true`` the answer streams as Server-Sent Events and
  ends with an ``event: feedback`` carrying both.
* ``POST /feedback`` (and ``GET /feedback/health``, ``GET /feedback/sessions/{id}``): the
  feedback router, documented in ``/docs``.
* ``GET /``: the chat page (``index.html`` + ``example_apps/static/chat.js``): answers stream
  in and the feedback widget (``/feedback/widget.js``) renders under each. The page runs
  under a strict Content-Security-Policy and gives the browser a ``demo_session`` cookie,
  which the kit reads as the session id (``session_cookie``), so feedback lands under it.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from example_apps.responder import MODEL, local_model
from feedback_asgi.config import FeedbackConfig
from feedback_asgi.context import FeedbackContext
from feedback_asgi.integrations.fastapi import feedback_router
from feedback_asgi.kit import FeedbackKit
from feedback_asgi.middleware import FeedbackMiddleware

PAGE = Path(__file__).with_name("index.html").read_text("utf-8")
STATIC = Path(__file__).parents[1] / "static"
SESSION_COOKIE = "demo_session"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""No inline script or style: the page, its chat.js and the widget all work under it."""


def default_kit() -> FeedbackKit:
    """A kit from ``FEEDBACK_ASGI_*`` variables that reads the session from the demo cookie."""
    config = FeedbackConfig.from_env()
    if config.session_cookie is None:
        config = config.model_copy(update={"session_cookie": SESSION_COOKIE})
    return FeedbackKit(config)


class ChatRequest(BaseModel):
    """A chat message."""

    message: str = Field(min_length=1, max_length=2000, examples=["What is feedback-asgi?"])
    stream: bool = Field(default=False, description="Stream the answer as Server-Sent Events")


class ChatReply(BaseModel):
    """The answer, with what a client needs to send feedback on it."""

    reply: str
    model: str
    trace_id: str
    feedback_token: str


def create_app(kit: FeedbackKit | None = None) -> FastAPI:
    """The demo app; ``kit`` defaults to :func:`default_kit`."""
    kit = kit if kit is not None else default_kit()
    app = FastAPI(title="feedback-asgi chat demo", version="1.0")
    # the router serves the feedback routes (and documents them); the middleware captures
    app.add_middleware(FeedbackMiddleware, kit=kit, serve_endpoint=False)
    app.include_router(feedback_router(kit), prefix=kit.config.path)

    async def stream_answer(message: str) -> AsyncIterator[str]:
        async with FeedbackContext(kit.collector, operation="chat") as ctx:
            ctx.set_input(message)
            ctx.set_metadata(model=MODEL, provider="local", project="demo")
            answer = local_model(message)
            for word in answer.split(" "):
                yield f"data: {word}\n\n"
            ctx.set_result(answer)

    @app.post("/chat", response_model=ChatReply)
    async def chat(body: ChatRequest) -> ChatReply | StreamingResponse:
        if body.stream:
            return StreamingResponse(stream_answer(body.message), media_type="text/event-stream")
        async with FeedbackContext(kit.collector, operation="chat") as ctx:
            ctx.set_input(body.message)
            ctx.set_metadata(model=MODEL, provider="local", project="demo")
            answer = local_model(body.message)
            ctx.set_result(answer)
        return ChatReply(
            reply=answer, model=MODEL, trace_id=ctx.trace_id, feedback_token=ctx.feedback_token
        )

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page(request: Request) -> HTMLResponse:
        response = HTMLResponse(PAGE, headers={"Content-Security-Policy": CSP})
        if SESSION_COOKIE not in request.cookies:
            response.set_cookie(
                SESSION_COOKIE, secrets.token_urlsafe(18), httponly=True, samesite="lax"
            )
        return response

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    return app


app = create_app()
