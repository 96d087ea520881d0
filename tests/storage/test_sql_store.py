"""SqlFeedbackStore specifics: lazy schema, typed columns, the live flag, URLs, bad rows."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import insert, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.core.exceptions import FeedbackValidationError, StorageUnavailableError
from feedback_asgi.core.records import FeedbackItem
from feedback_asgi.core.result import Err, Ok
from feedback_asgi.storage.base import FeedbackStoreProtocol
from feedback_asgi.storage.sql.schema import TABLE_NAME, ai_feedback, item_to_row
from feedback_asgi.storage.sql.store import SqlFeedbackStore, normalize_database_url
from tests import services

BACKENDS = ["sqlite", "postgres", "mysql"]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database on each backend."""
    return services.database_url_for(request, tmp_path)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A separate engine on the same database, to look at what the store wrote."""
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


async def _table_names(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda sync: inspect(sync).get_table_names())


def test_store_satisfies_protocol() -> None:
    store = SqlFeedbackStore("sqlite+aiosqlite://")
    assert isinstance(store, FeedbackStoreProtocol)


def test_plain_urls_get_async_drivers() -> None:
    assert normalize_database_url("sqlite:///x.db").drivername == "sqlite+aiosqlite"
    assert normalize_database_url("postgresql://u@h/db").drivername == "postgresql+asyncpg"
    assert normalize_database_url("mysql://root@h/db").drivername == "mysql+asyncmy"
    assert normalize_database_url("mariadb://root@h/db").drivername == "mariadb+asyncmy"
    assert normalize_database_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"


def test_default_url_comes_from_config() -> None:
    store = SqlFeedbackStore(config=FeedbackConfig(database_url="sqlite:///./other.db"))
    assert store.url.render_as_string() == "sqlite+aiosqlite:///./other.db"
    assert SqlFeedbackStore().url.render_as_string() == "sqlite+aiosqlite:///./feedback.db"


async def test_constructing_never_connects(tmp_path: Path) -> None:
    path = tmp_path / "lazy.db"
    store = SqlFeedbackStore(f"sqlite+aiosqlite:///{path}")
    SqlFeedbackStore("postgresql+asyncpg://nobody@127.0.0.1:9/none")
    assert not path.exists()
    item = FeedbackItem("thumbs", 1)
    assert await store.save(item) == Ok(item.id)
    assert path.exists()
    await store.close()


async def test_sqlite_file_runs_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    store = SqlFeedbackStore(f"sqlite+aiosqlite:///{path}")
    assert (await store.save(FeedbackItem("thumbs", 1))).is_ok()
    await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_in_memory_sqlite_keeps_one_database(tmp_path: Path) -> None:
    store = SqlFeedbackStore("sqlite+aiosqlite://")
    item = FeedbackItem("thumbs", 1)
    assert await store.save(item) == Ok(item.id)
    assert await store.get(item.id) == item
    await store.close()


async def test_table_is_created_on_first_use_only(database_url: str, engine: AsyncEngine) -> None:
    store = SqlFeedbackStore(database_url)
    await store.ping()
    assert TABLE_NAME not in await _table_names(engine)
    item = FeedbackItem("rating", 4)
    assert await store.save(item) == Ok(item.id)
    assert TABLE_NAME in await _table_names(engine)
    await store.close()


async def test_create_tables_off_leaves_the_schema_alone(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'managed.db'}"
    store = SqlFeedbackStore(url, config=FeedbackConfig(create_tables=False))
    result = await store.save(FeedbackItem("thumbs", 1))
    assert isinstance(result, Err)
    assert isinstance(result.error, StorageUnavailableError)
    with pytest.raises(StorageUnavailableError):
        await store.find_by_type("thumbs")
    await store.close()
    engine = create_async_engine(url)
    assert TABLE_NAME not in await _table_names(engine)
    await engine.dispose()


async def test_typed_columns_and_live_flag(database_url: str, engine: AsyncEngine) -> None:
    store = SqlFeedbackStore(database_url)
    context = {
        "trace_id": "t1",
        "session_id": "s1",
        "user_id": "u1",
        "model": "m1",
        "provider": "p1",
        "intent": "i1",
        "project": "pr1",
        "endpoint": "/chat",
        "input": "question",
    }
    first = FeedbackItem("rating", 2, context=context)
    thumbs = FeedbackItem("thumbs", -1, context={"user_id": 42})
    second = FeedbackItem("rating", 4.5, context=context, supersedes=first.id)
    gone = FeedbackItem("thumbs", -1, supersedes=thumbs.id, tombstone=True)
    for item in (first, thumbs, second, gone):
        assert await store.save(item) == Ok(item.id)
    await store.close()
    t = ai_feedback.c
    async with engine.connect() as conn:
        rows = {
            row.id: row
            for row in await conn.execute(
                select(ai_feedback).where(t.id.in_([first.id, thumbs.id, second.id, gone.id]))
            )
        }
    one, two = rows[first.id], rows[second.id]
    assert (one.trace_id, one.session_id, one.user_id, one.model, one.provider) == (
        "t1",
        "s1",
        "u1",
        "m1",
        "p1",
    )
    assert (one.intent, one.project, one.endpoint) == ("i1", "pr1", "/chat")
    assert (one.kind, one.rating, one.thumbs) == ("rating", 2.0, None)
    assert (two.rating, two.supersedes, two.root_id) == (4.5, first.id, first.id)
    assert not one.is_live
    assert two.is_live
    assert one.value == 2  # content columns are never rewritten
    assert one.context == context
    assert rows[thumbs.id].thumbs == -1
    assert rows[thumbs.id].user_id is None  # only strings are indexed
    assert not rows[thumbs.id].is_live
    assert rows[gone.id].tombstone
    assert not rows[gone.id].is_live
    assert rows[gone.id].root_id == thumbs.id


async def test_database_enforces_one_successor(database_url: str, engine: AsyncEngine) -> None:
    store = SqlFeedbackStore(database_url)
    target = FeedbackItem("thumbs", 1)
    successor = FeedbackItem("thumbs", -1, supersedes=target.id)
    assert await store.save_many([target, successor]) == Ok([target.id, successor.id])
    await store.close()
    rival = FeedbackItem("thumbs", 1, supersedes=target.id)
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(
                insert(ai_feedback), [item_to_row(rival, root_id=target.id, is_live=True)]
            )


async def test_overlong_correlation_value_is_rejected(tmp_path: Path) -> None:
    store = SqlFeedbackStore(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    result = await store.save(FeedbackItem("text", "x", context={"session_id": "s" * 300}))
    assert isinstance(result, Err)
    assert isinstance(result.error, FeedbackValidationError)
    assert "context.session_id" in result.error.fields
    await store.close()


async def test_value_the_database_cannot_store_fails_only_its_caller(database_url: str) -> None:
    store = SqlFeedbackStore(database_url)
    good = [FeedbackItem("label", {"label": i}) for i in range(20)]
    bad = FeedbackItem("label", {"label": {1, 2}})  # a set is not JSON
    results = await asyncio.gather(*(store.save(item) for item in [*good[:10], bad, *good[10:]]))
    assert [r for r in results if isinstance(r, Ok)] == [Ok(item.id) for item in good]
    failed = results[10]
    assert isinstance(failed, Err)
    assert isinstance(failed.error, FeedbackValidationError)
    assert await store.get(bad.id) is None
    await store.close()
