"""Django: ids, filters and times no stored item can have get the ASGI routes' 404/422 (never
503) on SQLite and PostgreSQL; the management commands refuse times out of range (exit
status 2) and print stored names escaped."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.core.records import FeedbackItem
from feedback_asgi.integrations.django.conf import set_kit
from feedback_asgi.integrations.django.store import DjangoFeedbackStore
from feedback_asgi.kit import FeedbackKit

ADMIN_TOKEN = "django-hostile-admin-token-0123456789"
BEARER = {"HTTP_AUTHORIZATION": f"Bearer {ADMIN_TOKEN}"}
LONG = "x" * 256


def _use(alias: str) -> FeedbackKit:
    config = FeedbackConfig(secret_key="django-hostile-secret-0123456789abcdef",
                            admin_token=ADMIN_TOKEN)
    kit = FeedbackKit(config, store=DjangoFeedbackStore(using=alias, config=config),
                      synchronous_writer=True)
    item = FeedbackItem("thumbs", 1, {"trace_id": "t-1", "model": "m", "session_id": "s-1"})
    assert async_to_sync(kit.store.save)(item).is_ok()
    set_kit(kit)
    return kit


def _error(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    return dict(body["error"])


def _check_routes() -> None:
    client = Client()
    for item_id in ("abc%00def", LONG, "%ED%A0%80"):
        for method in ("get", "delete"):
            answer = getattr(client, method)(f"/feedback/{item_id}", **BEARER)
            assert answer.status_code == 404, (method, item_id, answer.content)
            assert _error(answer)["code"] == "not_found"
    for route, query, field in [
        ("/feedback/", "model=a%00b", "model"),
        ("/feedback/", f"trace={LONG}", "trace"),
        ("/feedback/", "session=%FF", "session"),
        ("/feedback/", "since=0001-01-01T00:00:00Z", "since"),
        ("/feedback/stats", "until=0001-01-01T00:00:00Z", "until"),
        ("/feedback/stats", "provider=p%00", "provider"),
        ("/feedback/stats/timeseries", "since=9999-12-31T00:00:00Z", "since"),
    ]:
        answer = client.get(f"{route}?{query}", **BEARER)
        assert answer.status_code == 422, (route, query, answer.content)
        assert set(_error(answer)["fields"]) == {field}
    for query, field in [("until=0001-01-02", "until"), ("since=9999-12-31", "since"),
                         ("model=a%00b", "model")]:
        answer = client.post(f"/feedback/export/finetune?{query}", "",
                             content_type="application/json", **BEARER)
        assert answer.status_code == 422, (query, answer.content)
        assert set(_error(answer)["fields"]) == {field}


@pytest.mark.django_db(transaction=True)
def test_views_on_sqlite() -> None:
    _use("default")
    _check_routes()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases=["default", "postgres"])
def test_views_on_postgresql(postgres_alias: str) -> None:
    _use(postgres_alias)
    _check_routes()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("command", "args", "field"), [
    ("feedback_stats", ["--since", "0001-01-01"], "since"),
    ("feedback_stats", ["--until", "9999-12-31T23:00:00-05:00"], "until"),
    ("feedback_stats", ["--model", "a\x00b"], "model"),
    ("feedback_export", ["--until", "0001-01-02"], "until"),
    ("feedback_export", ["kto", "--since", "1969-12-31"], "since"),
    ("feedback_export", ["--since", "9999-12-31"], "since"),
])
def test_commands_refuse_bad_options_with_status_2(command: str, args: list[str],
                                                   field: str) -> None:
    with pytest.raises(CommandError) as caught:
        call_command(command, *args, stdout=StringIO(), stderr=StringIO())
    assert caught.value.returncode == 2
    assert field in str(caught.value)


@pytest.mark.django_db(transaction=True)
def test_feedback_stats_prints_stored_names_escaped() -> None:
    evil = "m\x1b[2J\u202eevil\x9b"
    store = DjangoFeedbackStore()
    assert async_to_sync(store.save)(FeedbackItem("thumbs", 1, {"trace_id": "t", "model": evil})
                                     ).is_ok()
    out = StringIO()
    call_command("feedback_stats", "--by", "model", stdout=out)
    text = out.getvalue()
    assert "m\\x1b[2J\\u202eevil\\x9b: " in text
    for raw in ("\x1b", "\u202e", "\x9b"):
        assert raw not in text
