"""The soak and reliability runs' app: the FastAPI chat example, each response naming its worker.

``uvicorn bench.apps.soak_app:app --workers N`` with ``FEEDBACK_ASGI_*`` variables for the
database, Redis and secret. The only addition to the example is an outermost pure ASGI
wrapper that adds ``X-Worker: <pid>`` to every response, so the driver can tell which
worker process captured an exchange and which one stored the feedback rating it.
"""

from __future__ import annotations

import os
from typing import Any

from example_apps.fastapi_chat.app import create_app

_WORKER = (b"x-worker", str(os.getpid()).encode())


class WorkerHeader:
    """Adds ``X-Worker`` to each HTTP response of ``app``; everything else passes through."""

    __slots__ = ("app",)

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_worker(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), _WORKER]}
            await send(message)

        await self.app(scope, receive, send_with_worker)


app = WorkerHeader(create_app())
