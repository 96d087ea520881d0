"""The chat page as a Django template: login, CSRF, a streamed answer and the widget under it.

* ``GET /``: ``templates/chat.html`` for a logged-in user (else the login page), under a
  strict Content-Security-Policy; its form carries the CSRF token that ``chat.js`` sends back.
* ``POST /ask/`` ``{"message": "...", "stream": true}``: CSRF-protected and login-only, the
  answer as Server-Sent Events; ``FeedbackMiddleware`` ends the stream with
  ``event: feedback`` (trace id and token), which the page hands to the widget.

Feedback is then posted by the widget to ``/feedback/`` with its token (no CSRF needed
there), and lands under the browser's session and the logged-in user.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from example_apps.responder import MODEL, local_model
from feedback_asgi.context import FeedbackContext
from feedback_asgi.integrations.django.conf import get_kit

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
MAX_MESSAGE = 2000


@login_required
@require_GET
def chat_page(request: HttpRequest) -> HttpResponse:
    """The chat page (``{% csrf_token %}`` in its form, the widget script in its head).

    A sync view: the template reads ``request.user``, a lazy synchronous ORM lookup.
    """
    response = render(request, "chat.html")
    response["Content-Security-Policy"] = CSP
    return response


async def _answer_events(message: str) -> AsyncIterator[str]:
    async with FeedbackContext(get_kit().collector, operation="chat") as ctx:
        ctx.set_input(message)
        ctx.set_metadata(model=MODEL, provider="local", project="demo")
        answer = local_model(message)
        for word in answer.split(" "):
            yield f"data: {word}\n\n"
        ctx.set_result(answer)


@login_required
@require_POST
async def ask(request: HttpRequest) -> HttpResponse:
    """The answer to ``{"message"}``: streamed with ``"stream": true``, else JSON."""
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not 0 < len(message) <= MAX_MESSAGE:
        return JsonResponse({"error": {"code": "invalid_request",
                                       "message": "send {\"message\": \"...\"}",
                                       "fields": {"message": f"1-{MAX_MESSAGE} characters"}}},
                            status=422)
    assert isinstance(body, dict)
    if body.get("stream", False):
        return StreamingHttpResponse(_answer_events(message), content_type="text/event-stream")
    async with FeedbackContext(get_kit().collector, operation="chat") as ctx:
        ctx.set_input(message)
        ctx.set_metadata(model=MODEL, provider="local", project="demo")
        answer = local_model(message)
        ctx.set_result(answer)
    return JsonResponse({"reply": answer, "model": MODEL, "trace_id": ctx.trace_id,
                         "feedback_token": ctx.feedback_token})
