"""What the middleware adds to a request's path: no thread, executor job or event loop of its
own, and no SQLAlchemy in a Django project's process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.core.handlers.asgi import ASGIHandler
from django.test import Client, override_settings

from feedback_asgi.integrations.django.conf import get_kit

OURS = "feedback_asgi.integrations.django.middleware.FeedbackMiddleware"
REQUESTS = 20


@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Threads started, executor jobs submitted and event loops created, from now on."""
    seen: Counter[str] = Counter()
    start, submit = threading.Thread.start, ThreadPoolExecutor.submit
    new_loop = asyncio.new_event_loop

    def counted_start(self: threading.Thread) -> None:
        seen["threads"] += 1
        start(self)

    def counted_submit(self: ThreadPoolExecutor, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        seen["jobs"] += 1
        return submit(self, fn, *args, **kwargs)

    def counted_loop() -> asyncio.AbstractEventLoop:
        seen["loops"] += 1
        return new_loop()

    monkeypatch.setattr(threading.Thread, "start", counted_start)
    monkeypatch.setattr(ThreadPoolExecutor, "submit", counted_submit)
    monkeypatch.setattr(asyncio, "new_event_loop", counted_loop)
    return seen


async def _get(app: ASGIHandler, path: str) -> list[dict[str, Any]]:
    """One GET through Django's ASGI handler, as a server would send it."""
    sent: list[dict[str, Any]] = []
    answered = asyncio.Event()
    messages = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": [(b"host", b"testserver")],
             "client": ("127.0.0.1", 50000), "server": ("testserver", 80)}
    await app(scope, receive, send)
    answered.set()
    return sent


def _handler(middleware: list[str]) -> ASGIHandler:
    with override_settings(MIDDLEWARE=middleware):
        return ASGIHandler()  # reads MIDDLEWARE now


def test_async_view_costs_no_thread_or_executor_job_of_ours(counts: Counter[str]) -> None:
    bare, ours = _handler([]), _handler([OURS])

    async def run(app: ASGIHandler) -> list[list[dict[str, Any]]]:
        await _get(app, "/async/")  # warm: the kit and its stores are built once
        counts.clear()
        return [await _get(app, "/async/") for _ in range(REQUESTS)]

    asyncio.run(run(bare))
    without = Counter(counts)
    answers = asyncio.run(run(ours))
    # Django's own hops (request_started's sync receivers and response.close(), each on a
    # per-request executor thread) happen either way; the middleware adds none
    assert without["jobs"] > 0
    assert counts == without
    headers = {name.lower(): value for name, value in answers[-1][0]["headers"]}
    trace_id = headers[b"x-trace-id"].decode()
    assert b"x-feedback-token" in headers
    assert asyncio.run(get_kit().exchanges.get(trace_id)) is not None


def test_sync_view_costs_no_thread_or_event_loop_of_ours(counts: Counter[str]) -> None:
    with override_settings(MIDDLEWARE=[]):
        client = Client()  # a client loads its middleware chain once
        client.get("/sync/")
        counts.clear()
        for _ in range(REQUESTS):
            client.get("/sync/")
    without = Counter(counts)
    with override_settings(MIDDLEWARE=[OURS]):
        client = Client()
        client.get("/sync/")
        counts.clear()
        responses = [client.get("/sync/") for _ in range(REQUESTS)]
    assert counts == without
    assert counts["loops"] == 0
    assert asyncio.run(get_kit().exchanges.get(responses[-1]["X-Trace-Id"])) is not None


def test_the_django_app_never_loads_sqlalchemy() -> None:
    """A Django project's workers need no SQLAlchemy for the default (ORM) store; loading it
    would add tens of thousands of objects for every full garbage collection to walk."""
    script = """
import pkgutil, importlib, sys
import django
from django.conf import settings
settings.configure(
    SECRET_KEY="x", USE_TZ=True, ROOT_URLCONF="feedback_asgi.integrations.django.urls",
    INSTALLED_APPS=["django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
                    "django.contrib.sessions", "django.contrib.messages",
                    "feedback_asgi.integrations.django"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    FEEDBACK_ASGI={"secret_key": "feedback-asgi-test-secret-0123456789abcdef"},
)
django.setup()
import feedback_asgi.integrations.django as app
for module in pkgutil.walk_packages(app.__path__, app.__name__ + "."):
    importlib.import_module(module.name)
from feedback_asgi.integrations.django.conf import get_kit
kit = get_kit()
print(type(kit.store).__name__, sorted(n for n in sys.modules if n.startswith("sqlalchemy")))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, env=_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["DjangoFeedbackStore", "[]"]


def _env() -> dict[str, str]:
    """This environment without settings that would pick another store."""
    return {key: value for key, value in os.environ.items()
            if not key.startswith(("FEEDBACK_ASGI_", "DJANGO_SETTINGS_MODULE"))}
