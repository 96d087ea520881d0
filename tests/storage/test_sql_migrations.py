"""Alembic migrations create exactly the schema the store creates lazily; ``feedback-asgi db``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Index, MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from typer.testing import CliRunner

from feedback_asgi.cli import app
from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.core.records import FeedbackItem
from feedback_asgi.core.result import Ok
from feedback_asgi.storage.sql import migrations
from feedback_asgi.storage.sql.schema import ai_feedback, ai_feedback_hourly, metadata
from feedback_asgi.storage.sql.store import SqlFeedbackStore
from tests import services

PG_CATALOG = {
    "columns": """SELECT column_name, data_type, character_maximum_length, is_nullable,
                         collation_name, udt_name
                  FROM information_schema.columns
                  WHERE table_name IN ('ai_feedback', 'ai_feedback_hourly')
                  ORDER BY table_name, column_name""",
    "indexes": """SELECT indexname, indexdef FROM pg_indexes
                  WHERE tablename IN ('ai_feedback', 'ai_feedback_hourly') ORDER BY indexname""",
    "constraints": """SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
                      WHERE conrelid IN ('ai_feedback'::regclass, 'ai_feedback_hourly'::regclass)
                      ORDER BY conname""",
}
SQLITE_CATALOG = {
    "objects": """SELECT type, name, sql FROM sqlite_master
                  WHERE tbl_name IN ('ai_feedback', 'ai_feedback_hourly') ORDER BY type, name""",
}


@pytest.fixture
async def second_postgres_url() -> AsyncIterator[str]:
    name, url = await services.create_postgres_database()
    try:
        yield url
    finally:
        await services.drop_postgres_database(name)


async def _catalog(url: str, queries: dict[str, str]) -> dict[str, list[tuple[Any, ...]]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return {k: [tuple(r) for r in await conn.execute(text(q))] for k, q in queries.items()}
    finally:
        await engine.dispose()


def _spaced(catalog: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    """SQLite's catalog with runs of white space in the stored SQL made one space (an
    ``ALTER TABLE ... ADD COLUMN`` keeps its own spacing in the table's text)."""
    return {key: [tuple(" ".join(part.split()) if isinstance(part, str) else part
                        for part in row) for row in rows]
            for key, rows in catalog.items()}


async def _diff(engine: AsyncEngine, target: MetaData) -> list[Any]:
    def compare(sync: Any) -> list[Any]:
        opts = {"version_table": migrations.VERSION_TABLE}
        return list(compare_metadata(MigrationContext.configure(sync, opts=opts), target))

    async with engine.connect() as conn:
        return await conn.run_sync(compare)


async def _create_lazily(url: str) -> None:
    store = SqlFeedbackStore(url)
    item = FeedbackItem("thumbs", 1)
    assert await store.save(item) == Ok(item.id)
    await store.close()


async def test_postgres_migration_equals_lazy_schema(postgres_url: str, second_postgres_url: str) -> None:
    await migrations.upgrade_async(postgres_url)
    assert await migrations.current_async(postgres_url) == "0003"
    await _create_lazily(second_postgres_url)
    migrated = await _catalog(postgres_url, PG_CATALOG)
    lazy = await _catalog(second_postgres_url, PG_CATALOG)
    assert migrated == lazy
    assert len(migrated["indexes"]) == 13  # primary key, unique, 10 indexes; rollup's key
    assert any("INCLUDE" in d and "WHERE is_live" in d for _, d in migrated["indexes"])

    engine = create_async_engine(postgres_url)
    try:
        assert await _diff(engine, metadata) == []
        # the comparison does notice a difference: a schema with one more index
        changed = MetaData()
        Index("ix_extra", ai_feedback.to_metadata(changed).c.kind)
        ai_feedback_hourly.to_metadata(changed)
        assert [d[0] for d in await _diff(engine, changed)] == ["add_index"]
    finally:
        await engine.dispose()


async def test_sqlite_migration_equals_lazy_schema(tmp_path: Path) -> None:
    migrated_url = f"sqlite+aiosqlite:///{tmp_path / 'migrated.db'}"
    lazy_url = f"sqlite+aiosqlite:///{tmp_path / 'lazy.db'}"
    await migrations.upgrade_async(migrated_url)
    await _create_lazily(lazy_url)
    migrated = _spaced(await _catalog(migrated_url, SQLITE_CATALOG))
    assert migrated == _spaced(await _catalog(lazy_url, SQLITE_CATALOG))
    assert len(migrated["objects"]) == 15  # 2 tables, 3 automatic indexes, 10 indexes
    engine = create_async_engine(migrated_url)
    try:
        assert await _diff(engine, metadata) == []
    finally:
        await engine.dispose()


async def test_store_works_on_a_migrated_database(postgres_url: str) -> None:
    await migrations.upgrade_async(postgres_url)
    store = SqlFeedbackStore(postgres_url, config=FeedbackConfig(create_tables=False))
    first = FeedbackItem("rating", 3, context={"session_id": "s"})
    second = FeedbackItem("rating", 5, context={"session_id": "s"}, supersedes=first.id)
    assert await store.save_many([first, second]) == Ok([first.id, second.id])
    assert [item.id for item in await store.find_by_session("s")] == [second.id]
    assert (await store.aggregate()).average_rating == 5.0
    await store.close()


async def test_upgrade_adopts_a_lazily_created_table_and_downgrade_drops_it(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'adopt.db'}"
    await _create_lazily(url)
    assert await migrations.current_async(url) is None
    await migrations.upgrade_async(url)
    assert await migrations.current_async(url) == "0003"
    store = SqlFeedbackStore(url, config=FeedbackConfig(create_tables=False))
    assert len([item async for item in store.iter_items()]) == 1  # rows kept
    await store.close()
    await migrations.downgrade_async(url, "base")
    assert await migrations.current_async(url) is None
    tables = await _catalog(url, {"t": "SELECT name FROM sqlite_master WHERE type = 'table'"})
    assert ("ai_feedback",) not in tables["t"]


def test_version_table_leaves_the_host_apps_alembic_alone(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'host.db'}"

    async def host_history() -> None:
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
            await conn.execute(text("INSERT INTO alembic_version VALUES ('hostapp42')"))
        await engine.dispose()

    asyncio.run(host_history())
    migrations.upgrade(url)
    assert migrations.current(url) == "0003"
    rows = asyncio.run(_catalog(url, {"v": "SELECT version_num FROM alembic_version"}))
    assert rows["v"] == [("hostapp42",)]


def test_cli_db_upgrade_create_and_current(tmp_path: Path) -> None:
    runner = CliRunner()
    upgraded = f"sqlite:///{tmp_path / 'cli.db'}"
    result = runner.invoke(app, ["db", "upgrade", "--database-url", upgraded])
    assert result.exit_code == 0, result.output
    assert "at revision 0003" in result.output
    created = f"sqlite:///{tmp_path / 'created.db'}"
    result = runner.invoke(app, ["db", "create", "--database-url", created])
    assert result.exit_code == 0, result.output
    assert migrations.current(created) == "0003"
    result = runner.invoke(app, ["db", "current", "--database-url", created])
    assert "at revision 0003" in result.output
    assert runner.invoke(app, ["db", "upgrade", "--database-url", "memory://"]).exit_code == 2


def test_cli_reads_the_url_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("FEEDBACK_ASGI_DATABASE_URL", url)
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert migrations.current(url) == "0003"


def test_cli_reports_an_unreachable_database() -> None:
    result = CliRunner().invoke(
        app, ["db", "upgrade", "--database-url", "postgresql://postgres@127.0.0.1:9/none"])
    assert result.exit_code == 1


@pytest.fixture
async def second_mysql_url() -> AsyncIterator[str]:
    name, url = await services.create_mysql_database()
    try:
        yield url
    finally:
        await services.drop_mysql_database(name)


async def test_mariadb_migration_equals_lazy_schema(mysql_url: str, second_mysql_url: str) -> None:
    await migrations.upgrade_async(mysql_url)
    await _create_lazily(second_mysql_url)
    show = {"table": "SHOW CREATE TABLE ai_feedback",
            "rollup": "SHOW CREATE TABLE ai_feedback_hourly"}
    migrated_tables = await _catalog(mysql_url, show)
    lazy_tables = await _catalog(second_mysql_url, show)
    for table in show:
        # the same lines; only the order indexes were created in differs
        assert sorted(line.rstrip(",") for line in migrated_tables[table][0][1].splitlines()) == sorted(
            line.rstrip(",") for line in lazy_tables[table][0][1].splitlines()
        )
    migrated = migrated_tables["table"][0][1]
    assert "utf8mb4_bin" in migrated
    assert "datetime(6)" in migrated
