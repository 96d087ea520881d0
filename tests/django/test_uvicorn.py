"""Django under a real uvicorn: our Django middleware streaming SSE, and Django's ASGI
application wrapped in the framework-neutral ``FeedbackMiddleware``."""

from __future__ import annotations

import asyncio
import json

import httpx
from django.core.asgi import get_asgi_application
from django.test import override_settings

from feedback_asgi.integrations.django.conf import get_kit
from feedback_asgi.kit import FeedbackKit
from feedback_asgi.middleware import FeedbackMiddleware
from tests.asgi.harness import serve
from tests.django import views
from tests.django.test_middleware import MIDDLEWARE_WITHOUT_US


async def test_sse_first_event_arrives_before_the_second_is_produced() -> None:
    views.GATE["first"] = asyncio.Event()
    events: list[str] = []
    async with (
        serve(get_asgi_application()) as url,
        httpx.AsyncClient() as http,
        asyncio.timeout(10),
        http.stream("GET", f"{url}/sse/gate/") as response,
    ):
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                events.append(line[5:].strip())
                if len(events) == 1:
                    views.GATE["first"].set()
    assert events[:2] == ["first", "second"]
    assert json.loads(events[2]) == {"trace_id": response.headers["x-trace-id"],
                                     "token": response.headers["x-feedback-token"]}
    trace = response.headers["x-trace-id"]
    for _ in range(200):  # Django closes the response (our hook) just after the last chunk
        if await get_kit().exchanges.get(trace) is not None:
            break
        await asyncio.sleep(0.01)
    recorded = await get_kit().exchanges.get(trace)
    assert recorded is not None
    assert recorded.output == "firstsecond"


async def test_django_asgi_application_wrapped_in_the_asgi_middleware() -> None:
    kit = FeedbackKit.for_testing()
    with override_settings(MIDDLEWARE=MIDDLEWARE_WITHOUT_US):
        application = FeedbackMiddleware(get_asgi_application(), kit=kit)
        async with serve(application, lifespan="auto") as url, httpx.AsyncClient() as http:
            sync_answer = await http.get(f"{url}/sync/?q=abc")
            async_answer = await http.get(f"{url}/async/?q=xyz",
                                          headers={"X-Request-Id": "wrapped-1"})
            posted = await http.post(f"{url}/echo/", json={"question": "q", "token": "t0p"})
    assert sync_answer.status_code == async_answer.status_code == posted.status_code == 200
    wrapped = async_answer.headers["x-trace-id"]
    assert wrapped != "wrapped-1"
    assert kit.signer.verify(async_answer.headers["x-feedback-token"], wrapped).is_ok()  # type: ignore[attr-defined]
    first = await kit.find_exchange(sync_answer.headers["x-trace-id"])
    assert first is not None
    assert (first.input, first.output) == ("abc", "CBA")  # FeedbackContext in a sync view
    second = await kit.find_exchange(wrapped)
    assert second is not None
    assert second.request_id == "wrapped-1"
    assert second.output == {"answer": "ZYX", "password": "[redacted]"}
    echoed = await kit.find_exchange(posted.headers["x-trace-id"])
    assert echoed is not None
    assert echoed.input == {"question": "q", "token": "[redacted]"}
    assert posted.json() == {"question": "q", "token": "t0p"}


async def test_both_middlewares_capture_once() -> None:
    kit = FeedbackKit.for_testing()
    application = FeedbackMiddleware(get_asgi_application(), kit=kit)
    async with serve(application) as url, httpx.AsyncClient() as http:
        response = await http.get(f"{url}/async/")
    assert response.headers.get_list("x-trace-id") == [response.headers["x-trace-id"]]
    assert await kit.find_exchange(response.headers["x-trace-id"]) is not None
