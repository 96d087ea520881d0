"""Ids, filters, cursors and options no stored item can have: 404 or 422 naming the field,
never 503, on memory, SQLite, PostgreSQL and MariaDB (PostgreSQL text cannot hold NUL)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.core.records import FeedbackItem
from feedback_asgi.kit import FeedbackKit
from feedback_asgi.web.endpoint import create_feedback_endpoint
from tests import services
from tests.endpoint.apps import SURFACES, build, client, error_of

ADMIN_TOKEN = "hostile-params-admin-token-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SECRET = "hostile-params-secret-key-0123456789abcdef"
LONG = "x" * 256  # one past the longest id or correlation value any store keeps
UNREACHABLE = "postgresql+asyncpg://postgres@127.0.0.1:1/nothing"


def _cursor(created: str, item_id: str) -> str:
    raw = json.dumps([created, item_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _kit(url: str, **settings: Any) -> FeedbackKit:
    return FeedbackKit(FeedbackConfig(database_url=url, admin_token=ADMIN_TOKEN,
                                      secret_key=SECRET, **settings))


BACKENDS = ["memory", "sqlite", "postgres", "mysql"]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return services.database_url_for(request, tmp_path)


@pytest.fixture
async def kit(database_url: str) -> AsyncIterator[FeedbackKit]:
    """A kit on each backend, holding one item (so the tables exist)."""
    kit = _kit(database_url)
    item = FeedbackItem("thumbs", 1, {"trace_id": "t-1", "model": "m", "session_id": "s-1"})
    assert (await kit.store.save(item)).is_ok()
    try:
        yield kit
    finally:
        await kit.shutdown()


BAD_IDS = ["abc%00def", "%00", LONG, "x" * 200, "%ED%A0%80", "%FF", "caf%C3%A9%00"]


@pytest.mark.parametrize("item_id", BAD_IDS)
async def test_an_id_no_item_can_have_is_404_for_every_method(kit: FeedbackKit,
                                                               item_id: str) -> None:
    async with client(create_feedback_endpoint(kit)) as http:
        answers = [
            await http.get(f"/feedback/{item_id}", headers=ADMIN),
            await http.put(f"/feedback/{item_id}", json={"value": -1}, headers=ADMIN),
            await http.patch(f"/feedback/{item_id}", json={"value": -1}, headers=ADMIN),
            await http.delete(f"/feedback/{item_id}", headers=ADMIN),
        ]
    for answer in answers:
        assert answer.status_code == 404, (answer.request.method, answer.text)
        assert error_of(answer)["code"] == "not_found"
    assert len(await kit.store.find_by_trace("t-1", include_history=True)) == 1


# (route, query, the field the 422 names)
BAD_QUERIES = [
    *[("/feedback", f"{name}=a%00b", name) for name in ("model", "session", "user", "trace")],
    *[("/feedback", f"{name}={LONG}", name) for name in ("model", "session", "user", "trace")],
    *[("/feedback", f"{name}=%ED%A0%80", name) for name in ("model", "session", "trace")],
    ("/feedback", "user=%FF", "user"),
    ("/feedback", "model=", "model"),
    ("/feedback", "type=thumbs%00", "type"),
    ("/feedback", "limit=5%00", "limit"),
    ("/feedback", "limit=" + "9" * 5000, "limit"),
    ("/feedback", "cursor=%00", "cursor"),
    ("/feedback", "cursor=" + _cursor("2026-01-01T00:00:00+00:00", "a\x00b"), "cursor"),
    ("/feedback", "cursor=" + _cursor("2026-01-01T00:00:00+00:00", LONG), "cursor"),
    ("/feedback", "cursor=" + _cursor("0001-01-01T00:00:00+00:00", "x"), "cursor"),
    ("/feedback", "cursor=" + _cursor("9999-12-31T23:00:00-05:00", "x"), "cursor"),
    ("/feedback", "since=2026-01-01T00:00:00Z%00", "since"),
    *[("/feedback/stats", f"{name}=a%00b", name)
      for name in ("model", "provider", "intent", "project", "endpoint")],
    *[("/feedback/stats", f"{name}={LONG}", name)
      for name in ("model", "provider", "intent", "project", "endpoint")],
    ("/feedback/stats", "project=%C3%28", "project"),
    ("/feedback/stats", "by=model%00", "by"),
    ("/feedback/stats", "window=7d%00", "window"),
    ("/feedback/stats", "unique=true%00", "unique"),
    ("/feedback/stats/timeseries", "interval=day%00", "interval"),
    ("/feedback/stats/timeseries", "model=a%00b", "model"),
    ("/feedback/stats/timeseries", "endpoint=%ED%BF%BF", "endpoint"),
]


@pytest.mark.parametrize(("route", "query", "field"), BAD_QUERIES)
async def test_a_filter_no_item_can_match_is_422_naming_it(kit: FeedbackKit, route: str,
                                                           query: str, field: str) -> None:
    async with client(create_feedback_endpoint(kit)) as http:
        answer = await http.get(f"{route}?{query}", headers=ADMIN)
    assert answer.status_code == 422, answer.text
    error = error_of(answer)
    assert error["code"] == "validation_error"
    assert field in error["fields"], error


BAD_EXPORTS = [
    *[("/feedback/export/finetune", f"{name}=a%00b", None, name)
      for name in ("model", "intent", "project")],
    ("/feedback/export/finetune", f"model={LONG}", None, "model"),
    ("/feedback/export/finetune", "model=%FF", None, "model"),
    ("/feedback/export/finetune", "format=openai%00", None, "format"),
    ("/feedback/export/finetune", "include_neutral=true%00", None, "include_neutral"),
    ("/feedback/export/finetune", "positive_weight=2%00", None, "positive_weight"),
    ("/feedback/export/fine%00tune", "", None, "kind"),
    ("/feedback/export", "", {"kind": "kto", "project": "p\u0000"}, "project"),
    ("/feedback/export", "", {"model": "\ud800"}, "model"),
]


@pytest.mark.parametrize(("route", "query", "body", "field"), BAD_EXPORTS)
async def test_a_bad_export_option_is_422_naming_it(kit: FeedbackKit, route: str, query: str,
                                                    body: dict[str, str] | None,
                                                    field: str) -> None:
    content = json.dumps(body).encode() if body is not None else b""
    headers = {**ADMIN, "Content-Type": "application/json"}
    async with client(create_feedback_endpoint(kit)) as http:
        answer = await http.post(f"{route}?{query}", content=content, headers=headers)
    assert answer.status_code == 422, answer.text
    assert field in error_of(answer)["fields"]


@pytest.mark.parametrize("surface_name", SURFACES)
async def test_every_surface_answers_the_same(surface_name: str) -> None:
    kit = FeedbackKit.for_testing(admin_token=ADMIN_TOKEN)
    async with client(build(surface_name, kit).app) as http:
        item = await http.get("/feedback/abc%00def", headers=ADMIN)
        listing = await http.get("/feedback/?model=a%00b", headers=ADMIN)
        stats = await http.get("/feedback/stats?model=%FF", headers=ADMIN)
        export = await http.post("/feedback/export?model=a%00b", headers=ADMIN)
    assert item.status_code == 404
    assert error_of(listing)["fields"] == {"model": "must not contain NUL characters"}
    assert error_of(stats)["fields"] == {"model": "not valid UTF-8"}
    assert error_of(export)["fields"] == {"model": "must not contain NUL characters"}


async def test_an_impossible_id_is_answered_without_the_store() -> None:
    """The database is down: an id that can exist is a 503, one that cannot is a 404 at once."""
    kit = _kit(UNREACHABLE, connect_timeout_seconds=0.5)
    try:
        async with client(create_feedback_endpoint(kit)) as http:
            possible = await http.get("/feedback/abc", headers=ADMIN)
            impossible = [await http.get(f"/feedback/{item_id}", headers=ADMIN)
                          for item_id in ("abc%00def", LONG)]
            filtered = await http.get("/feedback?trace=a%00b", headers=ADMIN)
    finally:
        await kit.shutdown()
    assert possible.status_code == 503
    assert [answer.status_code for answer in impossible] == [404, 404]
    assert filtered.status_code == 422


async def _raw(app: Any, method: str, path: str, query: bytes = b"") -> tuple[int, Any]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "root_path": "",
             "raw_path": path.encode("utf-8", "surrogatepass"), "query_string": query,
             "headers": [(b"authorization", ADMIN["Authorization"].encode())],
             "client": ("127.0.0.1", 1), "scheme": "http"}
    await app(scope, receive, send)
    body = sent[1].get("body", b"")
    return sent[0]["status"], json.loads(body) if body else None


async def test_lone_surrogates_and_raw_bytes_from_the_server() -> None:
    """A server may hand over a path with a lone surrogate, and raw non-UTF-8 query bytes."""
    app = create_feedback_endpoint(FeedbackKit.for_testing(admin_token=ADMIN_TOKEN))
    assert (await _raw(app, "GET", "/feedback/a\ud800b"))[0] == 404
    assert (await _raw(app, "DELETE", "/feedback/\udcff"))[0] == 404
    status, body = await _raw(app, "GET", "/feedback", b"model=\xff\xfe")
    assert (status, body["error"]["fields"]) == (422, {"model": "not valid UTF-8"})
    status, body = await _raw(app, "GET", "/feedback", b"\xff=1")
    assert (status, body["error"]["fields"]) == (422, {"\\xff": "not valid UTF-8"})
    status, body = await _raw(app, "GET", "/feedback/stats", "model=caf\u00e9".encode())
    assert status == 200  # raw UTF-8 (not percent-encoded) is read as UTF-8


async def test_values_that_can_be_stored_still_match(kit: FeedbackKit) -> None:
    """The rules refuse only what no row can hold: 255 characters and non-ASCII still work."""
    longest = "m" * 255
    item = FeedbackItem("rating", 4, {"trace_id": "t-2", "model": longest, "project": "café"})
    assert (await kit.store.save(item)).is_ok()
    async with client(create_feedback_endpoint(kit)) as http:
        listing = await http.get(f"/feedback?model={longest}", headers=ADMIN)
        stats = await http.get("/feedback/stats?project=caf%C3%A9", headers=ADMIN)
        shown = await http.get(f"/feedback/{item.id}", headers=ADMIN)
    assert [found["id"] for found in listing.json()["items"]] == [item.id]
    assert stats.json()["totals"]["total_count"] == 1
    assert shown.status_code == 200


async def test_an_impossible_session_id_never_reaches_the_store() -> None:
    """Like an unknown session (an empty list for an admin), without asking the database."""
    kit = _kit(UNREACHABLE, connect_timeout_seconds=0.5)
    try:
        async with client(create_feedback_endpoint(kit)) as http:
            answers = [await http.get(f"/feedback/sessions/{session_id}", headers=ADMIN)
                       for session_id in ("a%00b", LONG)]
    finally:
        await kit.shutdown()
    assert [(answer.status_code, answer.json()) for answer in answers] == [(200, []), (200, [])]


def test_httpx_sends_the_bytes_we_mean() -> None:
    """The percent-escapes above reach the app as written (httpx does not re-encode them)."""
    request = httpx.Request("GET", "http://testserver/feedback/abc%00def?model=a%00b")
    assert request.url.raw_path == b"/feedback/abc%00def?model=a%00b"
