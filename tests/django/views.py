"""Views of the test project: sync and async, streaming, uploads, a failing one."""

from __future__ import annotations

import asyncio
import io
import json
import random
from collections.abc import AsyncIterator, Iterator

from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.views.decorators.csrf import csrf_exempt

from feedback_asgi.context import FeedbackContext
from feedback_asgi.integrations.django.conf import get_kit
from feedback_asgi.integrations.django.views import reader_required

CHUNKS = [b"alpha ", b"beta ", b"gamma"]


def answer(message: str) -> str:
    """A deterministic stand-in for a model."""
    return message[::-1].upper()


def sync_answer(request: HttpRequest) -> JsonResponse:
    message = request.GET.get("q", "hello")
    with FeedbackContext(get_kit().collector, operation="chat") as ctx:
        ctx.set_input(message)
        ctx.set_metadata(model="echo-1", provider="local")
        ctx.set_result(answer(message))
    return JsonResponse({"answer": answer(message), "trace_id": ctx.trace_id})


async def async_answer(request: HttpRequest) -> JsonResponse:
    message = request.GET.get("q", "hello")
    return JsonResponse({"answer": answer(message), "password": "hunter2"})


async def async_context(request: HttpRequest) -> JsonResponse:
    message = request.GET.get("q", "")
    async with FeedbackContext(get_kit().collector, operation="chat") as ctx:
        ctx.set_input(message)
        await asyncio.sleep(random.uniform(0, 0.02))
        ctx.set_result(answer(message))
    return JsonResponse({"answer": answer(message), "trace_id": ctx.trace_id})


async def whoami(request: HttpRequest) -> JsonResponse:
    user = await request.auser()
    return JsonResponse({"user": user.get_username() if user.is_authenticated else None})


@csrf_exempt
def echo_body(request: HttpRequest) -> HttpResponse:
    return HttpResponse(request.body, content_type=request.content_type or "text/plain")


def upload(request: HttpRequest) -> JsonResponse:
    files = {name: len(item.read()) for name, item in request.FILES.items()}
    return JsonResponse({"files": files, "fields": dict(request.POST.items())})


def read_chunks(request: HttpRequest) -> JsonResponse:
    sizes = []
    while chunk := request.read(1000):
        sizes.append(len(chunk))
    return JsonResponse({"total": sum(sizes), "reads": len(sizes)})


def stream_sync(request: HttpRequest) -> StreamingHttpResponse:
    def chunks() -> Iterator[bytes]:
        yield from CHUNKS

    return StreamingHttpResponse(chunks(), content_type="text/plain")


async def stream_async(request: HttpRequest) -> StreamingHttpResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for chunk in CHUNKS:
            await asyncio.sleep(0)
            yield chunk

    return StreamingHttpResponse(chunks(), content_type="text/plain")


async def sse(request: HttpRequest) -> StreamingHttpResponse:
    delay = float(request.GET.get("delay", "0"))

    async def events() -> AsyncIterator[str]:
        async with FeedbackContext(get_kit().collector, operation="stream") as ctx:
            ctx.set_input("stream please")
            for word in ("one", "two", "three"):
                yield f"data: {word}\n\n"
                await asyncio.sleep(delay)
            ctx.set_result("one two three")

    return StreamingHttpResponse(events(), content_type="text/event-stream")


GATE: dict[str, asyncio.Event] = {}


async def sse_gate(request: HttpRequest) -> StreamingHttpResponse:
    """Yields the second event only once the test saw the first (set ``GATE["first"]``)."""

    async def events() -> AsyncIterator[str]:
        yield "data: first\n\n"
        async with asyncio.timeout(5):
            await GATE["first"].wait()
        yield "data: second\n\n"

    return StreamingHttpResponse(events(), content_type="text/event-stream")


def file_download(request: HttpRequest) -> FileResponse:
    return FileResponse(io.BytesIO(b"file-bytes" * 100), filename="data.bin")


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("view failed")


def form_post(request: HttpRequest) -> HttpResponse:
    return HttpResponse(json.dumps({"ok": request.method}), content_type="application/json")


@reader_required
async def staff_only(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"secret": "figures"})


CALLS: dict[str, int] = {}


def public_sync(request: HttpRequest) -> JsonResponse:
    """Touches neither ``request.user`` nor ``request.session`` (a cacheable public page)."""
    CALLS["public_sync"] = CALLS.get("public_sync", 0) + 1
    return JsonResponse({"answer": "the same for everyone"})


async def public_async(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"answer": "the same for everyone"})


def whoami_sync(request: HttpRequest) -> JsonResponse:
    user = request.user
    return JsonResponse({"user": user.get_username() if user.is_authenticated else None})


def status(request: HttpRequest, status: int) -> HttpResponse:
    return HttpResponse(b"" if status in (204, 304) else b"body", status=status)


SSE_ENDINGS = {
    "boundary": "data: two\n\n",
    "crlf": "data: two\r\n\r\n",
    "unfinished": "data: partial",
    "one-newline": "data: partial\n",
}


def sse_ending(request: HttpRequest, ending: str) -> StreamingHttpResponse:
    def events() -> Iterator[str]:
        yield "data: one\n\n"
        yield SSE_ENDINGS[ending]

    return StreamingHttpResponse(events(), content_type="text/event-stream")


def own_trace(request: HttpRequest) -> JsonResponse:
    response = JsonResponse({"answer": "42"})
    response["X-Trace-Id"] = "app-chosen-7"
    return response
