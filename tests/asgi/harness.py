"""A raw ASGI driver for protocol-level tests, and a real uvicorn server on loopback.

``Receiver`` plays scripted messages and raises ``AssertionError("would hang")`` when it is
called more often than the script allows (a middleware must never pull more messages than
the app does). A script step may be a coroutine function: it is awaited and its message
returned (for a disconnect that arrives only once something happened). ``Sender`` appends
every message, optionally running a hook first (to fail, or to signal the app).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import uvicorn

Message = dict[str, Any]
Step = Message | Callable[[], Awaitable[Message]]


class Receiver:
    """A scripted ``receive``."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.scripted = len(steps)
        self.calls = 0

    async def __call__(self) -> Message:
        self.calls += 1
        if not self.steps:
            raise AssertionError("receive() called more often than scripted: would hang")
        step = self.steps.pop(0)
        if callable(step):
            return await step()
        return step


class Sender:
    """A recording ``send``; ``hook(message)`` runs before the message is recorded."""

    def __init__(self, hook: Callable[[Message], Awaitable[None]] | None = None) -> None:
        self.messages: list[Message] = []
        self.hook = hook

    async def __call__(self, message: Message) -> None:
        if self.hook is not None:
            await self.hook(message)
        self.messages.append(message)

    @property
    def start(self) -> Message:
        starts = [m for m in self.messages if m["type"] == "http.response.start"]
        assert len(starts) == 1, starts
        return starts[0]

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(bytes(name), bytes(value)) for name, value in self.start["headers"]]

    def header(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.headers if key.lower() == name]

    @property
    def bodies(self) -> list[bytes]:
        return [m.get("body", b"") for m in self.messages if m["type"] == "http.response.body"]

    @property
    def body(self) -> bytes:
        return b"".join(self.bodies)


def http_scope(
    method: str = "GET",
    path: str = "/",
    headers: list[tuple[bytes, bytes]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A minimal HTTP scope."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers if headers is not None else [(b"host", b"test")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "extensions": {},
        "state": {},
    }
    scope.update(extra)
    return scope


def request(body: bytes = b"", *, chunks: int = 1) -> list[Message]:
    """``http.request`` messages carrying ``body`` in ``chunks`` pieces."""
    if chunks <= 1 or not body:
        return [{"type": "http.request", "body": body, "more_body": False}]
    size = -(-len(body) // chunks)
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return [
        {"type": "http.request", "body": part, "more_body": index < len(parts) - 1}
        for index, part in enumerate(parts)
    ]


def disconnect_after(event: asyncio.Event) -> Callable[[], Awaitable[Message]]:
    """A step that returns ``http.disconnect`` once ``event`` is set (as a server does)."""

    async def step() -> Message:
        await event.wait()
        return {"type": "http.disconnect"}

    return step


@contextlib.asynccontextmanager
async def serve(app: Any, **options: Any) -> AsyncIterator[str]:
    """Run ``app`` under uvicorn on ``127.0.0.1:0`` in this event loop; yields the base URL."""
    options.setdefault("lifespan", "off")
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", loop="asyncio", **options
    )
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("uvicorn stopped before it started")
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        async with asyncio.timeout(10):
            await task
