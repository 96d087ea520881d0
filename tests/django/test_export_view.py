"""Django: ``POST export`` and ``export/<kind>`` stream the neutral export route's NDJSON.

Every test runs under WSGI (``Client``: a sync iterator) and ASGI (``AsyncClient``: an async
iterator); ``filterwarnings = error`` turns Django's iterator-kind warning into a failure.
Errors are compared with the neutral endpoint's answers to the same requests.
"""

from __future__ import annotations

import asyncio
import gc
import json
import re
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.core.asgi import get_asgi_application
from django.test import AsyncClient, Client, override_settings
from django.urls import reverse

from feedback_asgi.core.exceptions import StorageUnavailableError
from feedback_asgi.core.records import FeedbackItem, utc_now
from feedback_asgi.export import ExportOptions, export_chunks
from feedback_asgi.integrations.django.conf import get_kit, reset_kit, set_kit
from feedback_asgi.integrations.django.store import DjangoFeedbackStore
from feedback_asgi.kit import FeedbackKit
from feedback_asgi.storage.base import FeedbackStoreProtocol
from feedback_asgi.storage.memory import MemoryFeedbackStore
from tests.asgi.harness import serve
from tests.endpoint.apps import build, client
from tests.export import fixtures as fx

ADMIN_TOKEN = "django-export-admin-token-0123456789"
BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
WINDOW = {"since": fx.SINCE.isoformat(), "until": fx.UNTIL.isoformat()}
OWN_ORIGIN = {"Origin": "http://testserver"}
EXPORT_FORM = re.compile(r'<form method="post" action="([^"]+)" class="export">'
                         r'<input type="hidden" name="csrfmiddlewaretoken" value="([^"]+)">')


def url(kind: str | None = None, **params: str) -> str:
    path = reverse("feedback_asgi:export") if kind is None else \
        reverse("feedback_asgi:export", kwargs={"kind": kind})
    return f"{path}?{urlencode({**WINDOW, **params})}"


@dataclass
class Answer:
    status: int
    headers: Any
    body: bytes
    streaming: bool
    is_async: bool | None

    def json(self) -> Any:
        return json.loads(self.body)


class Caller:
    """Django's sync test client (WSGI) or its async one (ASGI), read the same way."""

    def __init__(self, mode: str, *, csrf: bool = False) -> None:
        self.mode = mode
        self.client: Any = Client(enforce_csrf_checks=csrf) if mode == "wsgi" \
            else AsyncClient(enforce_csrf_checks=csrf)

    def request(self, method: str, path: str, body: str = "", content_type: str = FORM,
                headers: dict[str, str] | None = None) -> Answer:
        headers = headers or {}
        if self.mode == "wsgi":
            headers = {"Host": "testserver", **headers}  # as a real server has (Client has not)
            response = self.client.generic(method, path, body, content_type, headers=headers)
            data = b"".join(response.streaming_content) if response.streaming else response.content
            return self._answer(response, data)
        return async_to_sync(self._arequest)(method, path, body, content_type, headers)

    async def _arequest(self, method: str, path: str, body: str, content_type: str,
                        headers: dict[str, str]) -> Answer:
        response = await self.client.generic(method, path, body, content_type, headers=headers)
        if response.streaming:
            return self._answer(response, b"".join([c async for c in response.streaming_content]))
        return self._answer(response, response.content)

    @staticmethod
    def _answer(response: Any, body: bytes) -> Answer:
        return Answer(response.status_code, response.headers, body, response.streaming,
                      getattr(response, "is_async", None))

    def post(self, path: str, body: str = "", content_type: str = FORM,
             headers: dict[str, str] | None = None) -> Answer:
        return self.request("POST", path, body, content_type, headers)

    def login(self, name: str, *, staff: bool = True) -> User:
        user = User.objects.create_user(name, password="pw-0123456789", is_staff=staff)
        self.client.force_login(user)
        return user


@pytest.fixture(params=["wsgi", "asgi"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def admin_token() -> Iterator[None]:
    with override_settings(FEEDBACK_ASGI={**settings.FEEDBACK_ASGI, "admin_token": ADMIN_TOKEN}):
        reset_kit()
        yield


def exported(store: FeedbackStoreProtocol, kind: str, **values: Any) -> str:
    async def collect() -> str:
        return "".join([chunk async for chunk in export_chunks(
            store, ExportOptions.from_mapping(kind, values))])

    return async_to_sync(collect)()


def neutral_answers(requests: list[tuple[str, str, str, str, dict[str, str]]]
                    ) -> list[tuple[int, Any]]:
    """What the neutral endpoint answers to the same requests (its kit takes the admin bearer)."""
    async def send() -> list[tuple[int, Any]]:
        kit = FeedbackKit.for_testing(admin_token=ADMIN_TOKEN)
        answers = []
        async with client(build("endpoint", kit).app) as http:
            for method, path, body, content_type, headers in requests:
                response = await http.request(method, path, content=body.encode(),
                                              headers={"Content-Type": content_type, **headers})
                answers.append((response.status_code, response.json()))
        return answers

    return async_to_sync(send)()


@pytest.mark.django_db(transaction=True)
def test_staff_get_the_export_as_ndjson(mode: str) -> None:
    store = get_kit().store
    async_to_sync(fx.load)(store)
    staff = Caller(mode)
    staff.login("ada")
    response = staff.post(url())
    assert response.status == 200, response.body
    assert response.headers["Content-Type"] == "application/x-ndjson"
    assert response.headers["Content-Disposition"] == 'attachment; filename="feedback-finetune.jsonl"'
    assert response.headers["Cache-Control"] == "no-store"
    assert "Content-Length" not in response.headers
    assert response.streaming
    assert response.is_async is (mode == "asgi")  # the iterator kind each handler consumes
    assert response.body.decode() == "".join(fx.FINETUNE) == exported(store, "finetune", **WINDOW)
    kto = staff.post(url("kto"))
    assert kto.headers["Content-Disposition"] == 'attachment; filename="feedback-kto.jsonl"'
    assert kto.body.decode() == "".join(fx.KTO) == exported(store, "kto", **WINDOW)
    options = {**WINDOW, "kind": "preferences", "format": "openai"}
    prefs = staff.post(reverse("feedback_asgi:export"), json.dumps(options), JSON)
    assert prefs.body.decode() == "".join(fx.PREFERENCES_OPENAI)
    m2 = staff.post(url(model="m2"))
    assert m2.body.decode() == fx.FINETUNE[2] + fx.FINETUNE[5]


@pytest.mark.django_db(transaction=True)
def test_rights_staff_permission_or_admin_bearer(mode: str, admin_token: None) -> None:
    async_to_sync(fx.load)(get_kit().store)
    token = {"X-Feedback-Token": get_kit().signer.sign("t1", "alice")}
    anonymous = Caller(mode).post(url())
    submitter = Caller(mode).post(url("kto"), headers=token)
    member = Caller(mode)
    user = member.login("bob", staff=False)
    refused = member.post(url())
    assert (anonymous.status, submitter.status, refused.status) == (401, 403, 403)
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    assert b"messages" not in anonymous.body + refused.body + submitter.body
    # the neutral endpoint's JSON: without rights, and for a submitter's token
    neutral = neutral_answers([("POST", url(), "", FORM, {}),
                               ("POST", url("kto"), "", FORM, token)])
    assert (anonymous.status, anonymous.json()) == neutral[0]
    assert (submitter.status, submitter.json()) == (refused.status, refused.json()) == neutral[1]

    user.user_permissions.add(Permission.objects.get(codename="view_aifeedback"))
    granted = member.post(url())
    assert granted.status == 200
    assert granted.body.decode() == "".join(fx.FINETUNE)
    bearer = Caller(mode).post(url("kto"), headers=BEARER)  # no Django login, no CSRF cookie
    assert bearer.body.decode() == "".join(fx.KTO)


@pytest.mark.django_db(transaction=True)
def test_bad_requests_get_the_endpoints_errors(mode: str) -> None:
    staff = Caller(mode)
    staff.login("ada")
    requests = [
        ("POST", url(since="yesterday"), "", FORM, BEARER),
        ("POST", url("essays"), "", FORM, BEARER),
        ("POST", url(format="openai", kind="labels"), "", FORM, BEARER),
        ("POST", url(colour="red"), "", FORM, BEARER),
        ("POST", url(), "[1, 2]", JSON, BEARER),
        ("POST", url(), "{not json", JSON, BEARER),
        ("POST", url(), "since=2025-01-01", FORM, BEARER),  # options only as query or JSON
        ("GET", url(), "", FORM, BEARER),
    ]
    answers = []
    for method, path, body, content_type, _bearer in requests:
        answer = staff.request(method, path, body, content_type)
        assert not answer.streaming
        assert answer.headers["Content-Type"] == "application/json"
        assert int(answer.headers["Content-Length"]) == len(answer.body)
        answers.append((answer.status, answer.json()))
    assert [status for status, _ in answers] == [422, 422, 422, 422, 422, 400, 415, 405]
    assert answers == neutral_answers(requests)
    fields = [set(body["error"]["fields"]) for _, body in answers[:4]]
    assert fields == [{"since"}, {"kind"}, {"format"}, {"colour"}]
    options = staff.request("OPTIONS", url())
    assert options.status == 204
    assert options.headers["Allow"] == "POST, OPTIONS"
    assert staff.request("GET", url()).headers["Allow"] == "POST, OPTIONS"


def test_storage_down_is_503_before_any_byte(mode: str, admin_token: None,
                                            django_db_blocker: Any) -> None:
    # no test database: the "dead" alias is reached for real (and refuses connections)
    with django_db_blocker.unblock():
        set_kit(FeedbackKit(get_kit().config, store=DjangoFeedbackStore(using="dead"),
                            synchronous_writer=True))
        response = Caller(mode).post(url(), headers=BEARER)
    assert response.status == 503
    assert not response.streaming
    assert response.headers["Retry-After"] == "5"
    assert response.json()["error"]["code"] == "storage_unavailable"


class CutStore(MemoryFeedbackStore):
    """Fails after ``fail_after`` items; records when its iteration was closed."""

    def __init__(self, fail_after: int | None = None) -> None:
        super().__init__()
        self.fail_after = fail_after
        self.closed = threading.Event()

    async def iter_items(self, **kwargs: Any) -> AsyncIterator[FeedbackItem]:
        try:
            count = 0
            async for item in super().iter_items(**kwargs):
                if count == self.fail_after:
                    raise StorageUnavailableError("feedback database unavailable: cut")
                count += 1
                yield item
        finally:
            self.closed.set()


def cut_kit(store: CutStore, rows: int) -> None:
    now = utc_now()
    items = [FeedbackItem("thumbs", 1, {"trace_id": f"t{n}", "input": f"q{n}", "output": "a"},
                          id=f"i{n:05}", created_at=now) for n in range(rows)]
    assert async_to_sync(store.save_many)(items).is_ok()
    kit = FeedbackKit.for_testing(admin_token=ADMIN_TOKEN)
    kit.store = store
    set_kit(kit)


def test_a_failure_mid_stream_cuts_the_response(mode: str, caplog: pytest.LogCaptureFixture
                                                ) -> None:
    cut_kit(CutStore(fail_after=1500), 2500)  # one chunk (1,000 lines) out, then the failure
    with pytest.raises(StorageUnavailableError):
        Caller(mode).post("/feedback/export", headers=BEARER)
    assert "export stream cut after the response started" in caplog.text


def test_closing_the_response_stops_the_export(mode: str) -> None:
    store = CutStore()
    cut_kit(store, 3500)
    caller = Caller(mode)

    async def first_chunk_then_close() -> bytes:
        response = await caller.client.post("/feedback/export", "", FORM, headers=BEARER)
        chunk: bytes = await anext(aiter(response.streaming_content))
        response.close()
        return chunk

    if mode == "wsgi":
        response = caller.client.post("/feedback/export", "", FORM, headers=BEARER)
        chunk = next(iter(response.streaming_content))
        response.close()
    else:
        chunk = async_to_sync(first_chunk_then_close)()
    assert chunk.count(b"\n") == 1000  # the first batch only
    assert store.closed.wait(5)  # the store's iteration was closed: the export stopped


@pytest.mark.django_db(transaction=True)
def test_staff_rights_on_a_post_need_the_csrf_token(mode: str) -> None:
    async_to_sync(fx.load)(get_kit().store)
    staff = Caller(mode, csrf=True)
    staff.login("ada")
    forged = staff.post(url())
    assert forged.status == 403  # the session cookie alone does not count on a POST
    assert forged.json()["error"]["code"] == "forbidden"
    assert staff.request("GET", "/feedback/dashboard", headers={"Accept": "text/html"}).status == 200
    token = staff.client.cookies[settings.CSRF_COOKIE_NAME].value
    assert staff.post(url(), headers={"X-CSRFToken": "x" * 32}).status == 403
    header = staff.post(url(), headers={"X-CSRFToken": token})
    assert header.body.decode() == "".join(fx.FINETUNE)
    form = staff.post(url(), urlencode({"csrfmiddlewaretoken": token}))
    assert form.body.decode() == "".join(fx.FINETUNE)
    # the token field is taken out; any other form field is refused as on every surface
    extra = staff.post(url(), urlencode({"csrfmiddlewaretoken": token, "model": "m2"}))
    assert extra.status == 415


@pytest.mark.django_db(transaction=True)
def test_the_dashboard_button_downloads_the_export(mode: str) -> None:
    context = {"trace_id": "t-button", "input": "the question", "output": "the answer"}
    store = get_kit().store
    assert async_to_sync(store.save)(FeedbackItem("thumbs", -1, context)).is_ok()
    staff = Caller(mode, csrf=True)
    staff.login("ada")
    page = staff.request("GET", "/feedback/dashboard", headers={"Accept": "text/html"})
    form = EXPORT_FORM.search(page.body.decode())
    assert form is not None, page.body
    action = unescape(form.group(1))
    assert urlsplit(action).path == "/feedback/export/finetune"
    # what a browser sends for the form: its one hidden field, from the page's origin
    response = staff.post(action, urlencode({"csrfmiddlewaretoken": unescape(form.group(2))}),
                          headers={"Origin": "http://testserver"})
    assert response.status == 200, response.body
    assert response.headers["Content-Type"] == "application/x-ndjson"
    since = parse_qs(urlsplit(action).query)["since"][0]
    assert response.body.decode() == exported(store, "finetune", since=since)
    records = [json.loads(line) for line in response.body.decode().splitlines()]
    assert [r["metadata"]["trace_id"] for r in records] == ["t-button"]
    assert records[0]["messages"][-1] == {"role": "assistant", "content": "the answer"}
    assert records[0]["weight"] == 0.5


@pytest.mark.django_db(transaction=True)
def test_the_admin_token_cookie_exports_from_its_own_origin(mode: str, admin_token: None) -> None:
    async_to_sync(fx.load)(get_kit().store)
    browser = Caller(mode, csrf=True)
    signed_in = browser.post("/feedback/dashboard/login", urlencode({"token": ADMIN_TOKEN}),
                             headers=OWN_ORIGIN)
    assert signed_in.status == 303
    page = browser.request("GET", "/feedback/dashboard", headers={"Accept": "text/html"})
    form = EXPORT_FORM.search(page.body.decode())
    assert form is not None
    body = urlencode({"csrfmiddlewaretoken": unescape(form.group(2))})
    own = browser.post(url(), body, headers=OWN_ORIGIN)
    assert own.body.decode() == "".join(fx.FINETUNE)
    foreign = browser.post(url(), body, headers={**OWN_ORIGIN, "Origin": "https://evil.test"})
    assert foreign.status == 401


# Django's ASGIHandler leaves its request body file to the garbage collector when a streamed
# response raises (handle() exits before body_file.close()); the exception's traceback, kept
# by the captured log record of the cut, holds it: dropped and collected in this test
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <function SpooledTemporaryFile.__del__"
    ":pytest.PytestUnraisableExceptionWarning")
async def test_under_uvicorn_the_export_streams_and_a_failure_cuts_the_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = CutStore()
    await sync_to_async(cut_kit)(store, 2500)
    async with serve(get_asgi_application()) as base, httpx.AsyncClient() as http:
        async with asyncio.timeout(20), http.stream("POST", f"{base}/feedback/export/kto",
                                                    headers=BEARER) as response:
            assert response.headers["content-type"] == "application/x-ndjson"
            assert response.headers["transfer-encoding"] == "chunked"
            lines = [line async for line in response.aiter_lines()]
        assert len(lines) == 2500
        assert json.loads(lines[0])["label"] is True
        store.fail_after = 1500
        async with asyncio.timeout(20), http.stream("POST", f"{base}/feedback/export",
                                                    headers=BEARER) as cut:
            assert cut.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):  # no final chunk: not a whole file
                await cut.aread()
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [StorageUnavailableError]
    for record in caplog.records:
        record.exc_info = None
    gc.collect()
