"""``DjangoFeedbackStore`` passes the shared store conformance suite on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from django.db import connections

from feedback_asgi.core.records import FeedbackItem
from feedback_asgi.core.result import Err, Ok
from feedback_asgi.integrations.django import models
from feedback_asgi.integrations.django.store import DjangoFeedbackStore
from feedback_asgi.storage.base import FeedbackStoreProtocol
from feedback_asgi.storage.sql import schema as sql_schema
from feedback_asgi.testing.conformance import StoreConformanceSuite


@pytest.mark.django_db(transaction=True)
class TestDjangoStoreOnSQLite(StoreConformanceSuite):
    @pytest.fixture
    async def store(self) -> AsyncIterator[DjangoFeedbackStore]:
        store = DjangoFeedbackStore()
        yield store
        await store.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases=["default", "postgres"])
class TestDjangoStoreOnPostgreSQL(StoreConformanceSuite):
    @pytest.fixture
    async def store(self, postgres_alias: str) -> AsyncIterator[DjangoFeedbackStore]:
        assert connections[postgres_alias].vendor == "postgresql"
        store = DjangoFeedbackStore(using=postgres_alias)
        yield store
        await store.close()


def test_it_is_a_feedback_store() -> None:
    assert isinstance(DjangoFeedbackStore(), FeedbackStoreProtocol)


def test_column_lengths_match_the_sqlalchemy_schema() -> None:
    assert models.ID_LENGTH == sql_schema.ID_LENGTH
    assert models.CORRELATION_LENGTH == sql_schema.CORRELATION_LENGTH
    django_columns = {field.column for field in models.AiFeedback._meta.concrete_fields}
    assert django_columns == {column.name for column in sql_schema.ai_feedback.columns}
    assert models.AiFeedback._meta.db_table == sql_schema.TABLE_NAME


@pytest.mark.django_db(transaction=True)
async def test_rows_are_typed_like_the_sql_store() -> None:
    store = DjangoFeedbackStore()
    item = FeedbackItem("rating", 4, context={"trace_id": "t1", "model": "m", "input": "q"},
                        metadata={"comment": "ok"})
    assert await store.save(item) == Ok(item.id)
    row = await models.AiFeedback.objects.aget(id=item.id)
    assert (row.rating, row.thumbs, row.model, row.trace_id, row.is_live, row.root_id) == (
        4.0, None, "m", "t1", True, item.id)
    assert row.to_item() == item
    assert row.comment == "ok"
    assert row.rated_input == "q"
    thumbs = FeedbackItem("thumbs", -1, supersedes=item.id)
    assert await store.save(thumbs) == Ok(thumbs.id)
    await row.arefresh_from_db()
    assert row.is_live is False
    assert (await models.AiFeedback.objects.aget(id=thumbs.id)).root_id == item.id


@pytest.mark.django_db(transaction=True)
async def test_an_overlong_correlation_value_is_rejected_not_stored() -> None:
    store = DjangoFeedbackStore()
    item = FeedbackItem("text", "x", context={"session_id": "s" * 300})
    result = await store.save(item)
    assert isinstance(result, Err)
    assert "context.session_id" in result.error.fields  # type: ignore[attr-defined]
    assert await store.get(item.id) is None
