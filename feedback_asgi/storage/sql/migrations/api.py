"""Run feedback-asgi's Alembic migrations from code (``feedback-asgi db`` uses these).

``upgrade`` is for production: it applies every migration up to ``revision``. A database
whose ``ai_feedback`` table was created lazily by the store, with no version recorded, is
first stamped with the first revision (the schema the lazy creation makes), then upgraded.
``create`` makes the tables from the current schema at once and records the newest
revision. The ``*_async`` variants run inside a running event loop; the plain ones start
their own (call them from synchronous code or ``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import create_async_engine

from feedback_asgi.storage.sql.schema import TABLE_NAME, metadata
from feedback_asgi.storage.sql.store import normalize_database_url

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "BASELINE_REVISION",
    "VERSION_TABLE",
    "alembic_config",
    "create",
    "create_async",
    "current",
    "current_async",
    "downgrade",
    "downgrade_async",
    "upgrade",
    "upgrade_async",
]

VERSION_TABLE = "feedback_asgi_alembic_version"
"""Where Alembic records our revision (never the host app's ``alembic_version``)."""
BASELINE_REVISION = "0001"
"""The revision whose schema the store's lazy table creation matches."""

_HERE = Path(__file__).parent


def alembic_config(url: str | URL | None = None) -> Config:
    """An Alembic ``Config`` for our scripts (``url`` defaults to the configured database)."""
    from alembic.config import Config

    from feedback_asgi.core.config import FeedbackConfig

    config = Config()
    config.set_main_option("script_location", str(_HERE))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(_HERE / "versions"))
    resolved = normalize_database_url(url or FeedbackConfig().database_url)
    config.set_main_option(
        "sqlalchemy.url", resolved.render_as_string(hide_password=False).replace("%", "%%")
    )
    return config


async def _with_connection(url: str | URL | None, work: _Work) -> str | None:
    config = alembic_config(url)
    engine = create_async_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        async with engine.connect() as conn:
            result = await conn.run_sync(lambda sync: work(config, sync))
            await conn.commit()
        return result
    finally:
        await engine.dispose()


class _Work:
    """A migration step run with a synchronous connection."""

    def __init__(self, step: str, revision: str = "head") -> None:
        self.step = step
        self.revision = revision

    def __call__(self, config: Config, connection: Connection) -> str | None:
        from alembic import command
        from alembic.migration import MigrationContext

        config.attributes["connection"] = connection
        if self.step == "current":
            context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
            return context.get_current_revision()
        if self.step == "create":
            metadata.create_all(connection, checkfirst=True)
            command.stamp(config, "head")
        elif self.step == "upgrade":
            tables = inspect(connection).get_table_names()
            if TABLE_NAME in tables and VERSION_TABLE not in tables:
                command.stamp(config, BASELINE_REVISION)
            command.upgrade(config, self.revision)
        elif self.step == "downgrade":
            command.downgrade(config, self.revision)
        return None


async def upgrade_async(url: str | URL | None = None, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (adopting a lazily created table first)."""
    await _with_connection(url, _Work("upgrade", revision))


async def downgrade_async(url: str | URL | None, revision: str) -> None:
    """Revert migrations down to ``revision`` (``"base"`` drops our tables)."""
    await _with_connection(url, _Work("downgrade", revision))


async def create_async(url: str | URL | None = None) -> None:
    """Create the tables from the current schema and record the newest revision."""
    await _with_connection(url, _Work("create"))


async def current_async(url: str | URL | None = None) -> str | None:
    """The revision recorded in the database, or ``None``."""
    return await _with_connection(url, _Work("current"))


def upgrade(url: str | URL | None = None, revision: str = "head") -> None:
    """Synchronous :func:`upgrade_async`."""
    asyncio.run(upgrade_async(url, revision))


def downgrade(url: str | URL | None, revision: str) -> None:
    """Synchronous :func:`downgrade_async`."""
    asyncio.run(downgrade_async(url, revision))


def create(url: str | URL | None = None) -> None:
    """Synchronous :func:`create_async`."""
    asyncio.run(create_async(url))


def current(url: str | URL | None = None) -> str | None:
    """Synchronous :func:`current_async`."""
    return asyncio.run(current_async(url))
