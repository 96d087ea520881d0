"""One AI-ish view: the FastAPI example's deterministic responder, as a Django view."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from example_apps.responder import MODEL, local_model
from feedback_asgi.context import FeedbackContext
from feedback_asgi.integrations.django.conf import get_kit


@csrf_exempt  # an API for the demo; real apps keep CSRF for cookie-authenticated POSTs
@require_POST
async def chat(request: HttpRequest) -> HttpResponse:
    """``POST /chat/ {"message": "..."}``: the answer, its trace id and feedback token."""
    try:
        message = json.loads(request.body or b"{}").get("message", "")
    except (ValueError, AttributeError):
        return JsonResponse({"error": "send JSON: {\"message\": \"...\"}"}, status=400)
    async with FeedbackContext(get_kit().collector, operation="chat") as ctx:
        ctx.set_input(message)
        ctx.set_metadata(model=MODEL, provider="local", project="demo")
        answer = local_model(str(message))
        ctx.set_result(answer)
    return JsonResponse({"reply": answer, "model": MODEL, "trace_id": ctx.trace_id,
                         "feedback_token": ctx.feedback_token})
