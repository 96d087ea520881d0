"""Alembic migrations of feedback-asgi's tables, shipped inside the package.

``feedback-asgi db upgrade`` (or :func:`upgrade`) brings a database to the newest schema;
set ``create_tables=False`` in the config afterwards so the store never creates tables
itself. Needs Alembic: ``pip install feedback-asgi[cli]``.
"""

from feedback_asgi.storage.sql.migrations.api import (
    BASELINE_REVISION,
    VERSION_TABLE,
    alembic_config,
    create,
    create_async,
    current,
    current_async,
    downgrade,
    downgrade_async,
    upgrade,
    upgrade_async,
)

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
