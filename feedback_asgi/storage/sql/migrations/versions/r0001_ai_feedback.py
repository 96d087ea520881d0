"""Create the ai_feedback table and its indexes.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql, postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _id() -> sa.types.TypeEngine[str]:
    return sa.String(128).with_variant(sa.String(128, collation="C"), "postgresql")


def _text() -> sa.String:
    return sa.String(255)


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "ai_feedback",
        sa.Column("id", _id(), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column("trace_id", _text()),
        sa.Column("session_id", _text()),
        sa.Column("user_id", _text()),
        sa.Column("model", _text()),
        sa.Column("provider", _text()),
        sa.Column("intent", _text()),
        sa.Column("project", _text()),
        sa.Column("endpoint", _text()),
        sa.Column("rating", sa.Double()),
        sa.Column("thumbs", sa.SmallInteger()),
        sa.Column("supersedes", _id()),
        sa.Column("tombstone", sa.Boolean(), nullable=False),
        sa.Column("is_live", sa.Boolean(), nullable=False),
        sa.Column("root_id", _id(), nullable=False),
        sa.Column("value", _json()),
        sa.Column("context", _json(), nullable=False),
        sa.Column("metadata", _json(), nullable=False),
        sa.UniqueConstraint("supersedes", name="uq_ai_feedback_supersedes"),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    for name, columns in (
        ("ix_ai_feedback_created_at", ["created_at", "id"]),
        ("ix_ai_feedback_session_id", ["session_id", "created_at", "id"]),
        ("ix_ai_feedback_trace_id", ["trace_id", "created_at", "id"]),
        ("ix_ai_feedback_kind", ["kind", "created_at", "id"]),
        ("ix_ai_feedback_model", ["model", "created_at", "id"]),
        ("ix_ai_feedback_user_id", ["user_id", "created_at", "id"]),
        ("ix_ai_feedback_root_id", ["root_id"]),
    ):
        op.create_index(name, "ai_feedback", columns)
    live = sa.column("is_live", sa.Boolean())
    op.create_index(
        "ix_ai_feedback_live_window",
        "ai_feedback",
        ["created_at"],
        postgresql_include=["kind", "rating", "thumbs", "model", "provider"],
        postgresql_where=live,
        sqlite_where=live,
    )


def downgrade() -> None:
    op.drop_table("ai_feedback")
