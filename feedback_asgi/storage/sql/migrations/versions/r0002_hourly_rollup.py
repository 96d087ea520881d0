"""Add the ai_feedback_hourly rollup (stats per UTC hour) and fill it from the live rows.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def _time() -> sa.types.TypeEngine[Any]:
    return sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    from feedback_asgi.storage.sql.rollup import backfill_sync

    bind = op.get_bind()
    if sa.inspect(bind).has_table("ai_feedback_hourly"):
        return  # made already by a store that created its tables lazily (and kept it in step)
    text = sa.String(255)
    op.create_table(
        "ai_feedback_hourly",
        sa.Column("bucket", _time(), primary_key=True),
        sa.Column("dims", sa.String(32), primary_key=True),
        sa.Column("day", _time(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("model", text),
        sa.Column("provider", text),
        sa.Column("intent", text),
        sa.Column("project", text),
        sa.Column("endpoint", text),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("rated", sa.BigInteger(), nullable=False),
        sa.Column("rating_sum", sa.Double(), nullable=False),
        sa.Column("up", sa.BigInteger(), nullable=False),
        sa.Column("down", sa.BigInteger(), nullable=False),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    backfill_sync(bind)


def downgrade() -> None:
    op.drop_table("ai_feedback_hourly")
