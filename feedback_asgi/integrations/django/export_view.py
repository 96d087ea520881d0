"""``POST export`` and ``export/<kind>`` under Django: the neutral export route in a view.

:func:`export_view` drives :func:`feedback_asgi.web.export.serve_export` (no second
implementation): it gives it the request body as ``receive`` and a ``send`` that hands each
message to the response, one at a time. Rights are the other views' (:func:`grant_rights`):
staff, or the view permission, on a request that passes Django's CSRF check; or the admin
bearer, or the dashboard's sign-in cookie from the page's own origin. The dashboard's export
form sends Django's token as its only field: a form body holding nothing else counts as no
body (the options are in the query string), anything more is refused as elsewhere (415).

Under ASGI the export runs as a task on the request's event loop, read by the response's
async iterator. Under WSGI the view's event loop ends with the view, so the export runs on a
background loop (one daemon thread) and the response's sync iterator waits for each chunk:
Django never has to consume an async iterator under WSGI. One chunk is in flight at a time.
The first chunk is read before the response starts (storage down: the 503 JSON error); a
failure after that raises out of the iterator, so the server cuts the connection.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any
from urllib.parse import parse_qsl

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from feedback_asgi.integrations.django.background import BackgroundLoop
from feedback_asgi.integrations.django.conf import get_kit
from feedback_asgi.integrations.django.views import (
    CSRF_FIELD,
    body_receiver,
    grant_rights,
    request_scope,
    to_response,
)
from feedback_asgi.web.export import EXPORT_PATH, serve_export
from feedback_asgi.web.wire import ClientDisconnected, HttpError

__all__ = ["export_view"]

Message = dict[str, Any]
FORM = "application/x-www-form-urlencoded"

_background = BackgroundLoop("feedback-asgi-export")
"""Where exports served under WSGI run."""


class _Pipe:
    """The messages ``serve_export`` sends, passed on one at a time to the response.

    The queue lives on ``loop`` (where the export runs); readers on another loop or thread
    reach it through ``run_coroutine_threadsafe``.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[Message | Exception] = asyncio.Queue(maxsize=1)
        self.finished = False
        self.sent = False
        self._future: asyncio.Future[None] | concurrent.futures.Future[None] | None = None

    def start(self, export: Coroutine[Any, Any, None]) -> None:
        """Run ``export`` on :attr:`loop` (the running loop, or the background one)."""
        try:
            here = asyncio.get_running_loop() is self.loop
        except RuntimeError:
            here = False
        if here:  # ASGI: the request's context (its thread-sensitive ORM calls) goes along
            self._future = self.loop.create_task(self._run(export))
        else:  # WSGI: not the view's context, whose sync thread stops serving with the view
            self._future = contextvars.Context().run(
                asyncio.run_coroutine_threadsafe, self._run(export), self.loop)

    async def send(self, message: Message) -> None:
        """``serve_export``'s ``send``: waits until the previous message was taken."""
        self.sent = True
        await self.queue.put(message)

    async def _run(self, export: Coroutine[Any, Any, None]) -> None:
        try:
            await export
        except Exception as error:  # to the reader: a 500 before the start, a cut stream after
            await self.queue.put(error)
        else:
            if not self.sent:  # serve_export sends nothing when the client went away
                await self.queue.put(ClientDisconnected())

    def _taken(self, item: Message | Exception) -> Message:
        if isinstance(item, Exception):
            self.finished = True
            raise item
        if item["type"] == "http.response.body" and not item.get("more_body", False):
            self.finished = True
        return item

    async def next(self) -> Message:
        """The next message, from any event loop."""
        if asyncio.get_running_loop() is self.loop:
            return self._taken(await self.queue.get())
        future = asyncio.run_coroutine_threadsafe(self.queue.get(), self.loop)
        return self._taken(await asyncio.wrap_future(future))

    def next_blocking(self) -> Message:
        """The next message, from a thread with no running loop (the WSGI server's)."""
        return self._taken(asyncio.run_coroutine_threadsafe(self.queue.get(), self.loop).result())

    def cancel(self) -> None:
        """Stop the export (the client went away); safe from any thread, and when done."""
        future = self._future
        if future is None or future.done():
            return
        if isinstance(future, concurrent.futures.Future):
            future.cancel()  # cancels the task on its loop
        elif not self.loop.is_closed():
            self.loop.call_soon_threadsafe(future.cancel)


class _AsyncBody:
    """The export's chunks for ASGI (async iterator; ``close`` stops the export)."""

    def __init__(self, pipe: _Pipe) -> None:
        self.pipe = pipe

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        while not self.pipe.finished:
            try:
                body: bytes = (await self.pipe.next()).get("body", b"")
            except BaseException:
                self.pipe.cancel()
                raise
            if body:
                return body
        raise StopAsyncIteration

    def close(self) -> None:
        """Called by ``HttpResponse.close()``."""
        self.pipe.cancel()


class _SyncBody:
    """The export's chunks for WSGI (sync iterator; ``close`` stops the export)."""

    def __init__(self, pipe: _Pipe) -> None:
        self.pipe = pipe

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        while not self.pipe.finished:
            try:
                body: bytes = self.pipe.next_blocking().get("body", b"")
            except BaseException:
                self.pipe.cancel()
                raise
            if body:
                return body
        raise StopIteration

    def close(self) -> None:
        """Called by ``HttpResponse.close()``."""
        self.pipe.cancel()


async def _closing_connections(export: Coroutine[Any, Any, None]) -> None:
    """``export`` on the background loop, then Django's end-of-request connection cleanup
    in the thread its ORM calls ran in (no request signal reaches that thread)."""
    try:
        await export
    finally:
        await sync_to_async(close_old_connections, thread_sensitive=True)()


def _without_csrf_field(request: HttpRequest, message: Message) -> Message:
    """The dashboard form's body, ``csrfmiddlewaretoken=...`` alone, as an empty body."""
    body = message.get("body", b"")
    if not body or request.content_type != FORM:
        return message
    fields = parse_qsl(body.decode("latin-1"), keep_blank_values=True)
    if fields and all(name == CSRF_FIELD for name, _ in fields):
        return {**message, "body": b""}
    return message


def _replay(message: Message) -> Any:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return message

    return receive


def _with_headers(response: HttpResponseBase, start: Message) -> HttpResponseBase:
    del response["Content-Type"]  # Django's default: the export route's headers replace it
    for name, value in start.get("headers", ()):
        response[name.decode("latin-1")] = value.decode("latin-1")
    return response


async def _whole(pipe: _Pipe, start: Message) -> HttpResponseBase:
    """A reply that is not the stream (an error, the ``OPTIONS`` answer), read whole."""
    parts = []
    while not pipe.finished:
        parts.append((await pipe.next()).get("body", b""))
    return _with_headers(HttpResponse(b"".join(parts), status=start["status"]), start)


@csrf_exempt  # the CSRF check gates the staff rights instead (grant_rights), as for edits
async def export_view(request: HttpRequest, kind: str | None = None) -> HttpResponseBase:
    """``POST export`` (``kind`` in the options, ``finetune`` by default) or ``export/<kind>``."""
    kit = get_kit()
    scope = request_scope(request)
    await grant_rights(request, scope)
    try:
        message = await body_receiver(request, kit.config.max_payload_bytes)()
    except HttpError as error:
        return to_response(request, error.reply())
    path = EXPORT_PATH if kind is None else f"{EXPORT_PATH}/{kind}"
    receive = _replay(_without_csrf_field(request, message))
    asgi = isinstance(request, ASGIRequest)
    pipe = _Pipe(asyncio.get_running_loop() if asgi else _background.loop)
    export = serve_export(kit, scope, receive, pipe.send, path)
    pipe.start(export if asgi else _closing_connections(export))

    try:
        start = await pipe.next()
        if start["status"] != 200:
            return await _whole(pipe, start)
    except ClientDisconnected:
        return HttpResponse(status=400)
    except BaseException:
        pipe.cancel()
        raise
    body = _AsyncBody(pipe) if asgi else _SyncBody(pipe)
    return _with_headers(StreamingHttpResponse(body, status=200), start)
