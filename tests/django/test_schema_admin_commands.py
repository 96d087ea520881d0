"""``migrate`` from empty, the admin (filters, search, read-only detail, JSONL export), commands."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from django.test import Client

from feedback_asgi.core.records import FeedbackItem
from feedback_asgi.core.result import Ok
from feedback_asgi.integrations.django.models import AiFeedback
from feedback_asgi.integrations.django.store import DjangoFeedbackStore

INDEXES = {"ix_ai_feedback_created_at", "ix_ai_feedback_session_id", "ix_ai_feedback_trace_id",
           "ix_ai_feedback_kind", "ix_ai_feedback_model", "ix_ai_feedback_user_id",
           "ix_ai_feedback_root_id", "ix_ai_feedback_live_window"}


def _tables_and_indexes(alias: str) -> tuple[set[str], set[str]]:
    connection = connections[alias]
    with connection.cursor() as cursor:
        tables = set(connection.introspection.table_names(cursor))
        indexes: set[str] = set()
        if "ai_feedback" in tables:
            indexes = set(connection.introspection.get_constraints(cursor, "ai_feedback"))
    return tables, indexes


def _migrate_from_empty(alias: str) -> None:
    call_command("migrate", "feedback_asgi", "zero", database=alias, verbosity=0)
    tables, _ = _tables_and_indexes(alias)
    assert "ai_feedback" not in tables
    call_command("migrate", "feedback_asgi", database=alias, verbosity=0)
    tables, indexes = _tables_and_indexes(alias)
    assert "ai_feedback" in tables
    assert INDEXES | {"uq_ai_feedback_supersedes"} <= indexes


@pytest.mark.django_db(transaction=True)
def test_migrate_from_empty_on_sqlite() -> None:
    _migrate_from_empty("default")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases=["default", "postgres"])
def test_migrate_from_empty_on_postgresql(postgres_alias: str) -> None:
    _migrate_from_empty(postgres_alias)
    with connections[postgres_alias].cursor() as cursor:
        cursor.execute("SELECT column_name, collation_name FROM information_schema.columns "
                       "WHERE table_name = 'ai_feedback' AND column_name IN "
                       "('id', 'supersedes', 'root_id')")
        assert dict(cursor.fetchall()) == {"id": "C", "supersedes": "C", "root_id": "C"}


@pytest.mark.django_db
def test_models_and_migrations_agree() -> None:
    out = StringIO()
    call_command("makemigrations", "feedback_asgi", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def _seed() -> list[FeedbackItem]:
    store = DjangoFeedbackStore()
    items = [
        FeedbackItem("thumbs", 1, context={"model": "m1", "input": "question one",
                                           "output": "answer one"},
                     metadata={"comment": "lovely answer"}),
        FeedbackItem("correction", {"original": "teh", "corrected": "the cat"},
                     context={"model": "m2"}),
        FeedbackItem("rating", 2, context={"model": "m1"}),
    ]
    result = async_to_sync(store.save_many)(items)
    assert result == Ok([item.id for item in items])
    return items


@pytest.fixture
def staff_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw-123456"))
    return client


@pytest.mark.django_db(transaction=True)
def test_admin_list_filters_search_detail_and_export(staff_client: Client) -> None:
    thumbs, correction, rating = _seed()
    base = "/admin/feedback_asgi/aifeedback/"
    listing = staff_client.get(base)
    assert listing.status_code == 200
    assert listing.context["cl"].result_count == 3
    assert staff_client.get(base + "?kind__exact=thumbs").context["cl"].result_count == 1
    assert staff_client.get(base + "?model=m1").context["cl"].result_count == 2
    assert staff_client.get(base + "?thumbs__exact=1").context["cl"].result_count == 1
    assert list(staff_client.get(base + "?q=lovely").context["cl"].result_list) == [
        AiFeedback.objects.get(id=thumbs.id)]
    assert [row.id for row in staff_client.get(base + "?q=cat").context["cl"].result_list] == [
        correction.id]
    detail = staff_client.get(f"{base}{thumbs.id}/change/")
    assert detail.status_code == 200
    page = detail.content.decode()
    assert "question one" in page
    assert "answer one" in page
    assert 'name="_save"' not in page  # read-only
    assert staff_client.get(base + "add/").status_code == 403
    export = staff_client.post(base, {"action": "export_jsonl",
                                      "_selected_action": [thumbs.id, rating.id]})
    assert export["Content-Type"] == "application/x-ndjson"
    rows = [json.loads(line) for line in export.content.decode().splitlines()]
    assert {row["id"] for row in rows} == {thumbs.id, rating.id}
    assert FeedbackItem.from_dict(rows[0]) in (thumbs, rating)


@pytest.mark.django_db
def test_admin_is_closed_to_anonymous_and_non_staff() -> None:
    client = Client()
    assert client.get("/admin/feedback_asgi/aifeedback/").status_code == 302
    client.force_login(User.objects.create_user("plain", password="pw-123456"))
    assert client.get("/admin/feedback_asgi/aifeedback/").status_code == 302


@pytest.mark.django_db(transaction=True)
def test_feedback_stats_and_export_commands(tmp_path: Path) -> None:
    _seed()
    out = StringIO()
    call_command("feedback_stats", "--json", stdout=out)
    figures = json.loads(out.getvalue())["totals"]
    assert figures["total_count"] == 3
    assert figures["count_by_type"] == {"correction": 1, "rating": 1, "thumbs": 1}
    assert figures["average_rating"] == 2.0
    by_model = StringIO()
    call_command("feedback_stats", "--json", "--by", "model", stdout=by_model)
    groups = {g["key"]: g["total_count"] for g in json.loads(by_model.getvalue())["groups"]}
    assert groups == {"m1": 2, "m2": 1}
    target = tmp_path / "out.jsonl"
    # the CLI's export: only the thumbs has an exchange; the rating (2: negative) has none
    call_command("feedback_export", "finetune", "--model", "m1", "--out", str(target),
                 stderr=StringIO())
    (line,) = [json.loads(line) for line in target.read_text().splitlines()]
    assert line["messages"] == [{"role": "user", "content": "question one"},
                                {"role": "assistant", "content": "answer one"}]
    assert (line["weight"], line["metadata"]["comment"]) == (2.0, "lovely answer")
    kto = StringIO()
    call_command("feedback_export", "kto", stdout=kto, stderr=StringIO())
    assert json.loads(kto.getvalue())["label"] is True
    with pytest.raises(CommandError, match="openai format"):
        call_command("feedback_export", "labels", "--format", "openai", stderr=StringIO())
    future = StringIO()
    call_command("feedback_export", "--since", "2999-01-01", "--until", "2999-01-02",
                 stdout=future, stderr=StringIO())
    assert future.getvalue() == ""
