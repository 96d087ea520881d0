"""Add request_id and otel_trace_id: the client's and the tracing system's ids of a response.

The response id tokens are signed for (``trace_id``) is minted by the server; what a
client or OpenTelemetry called the request is kept beside it, for correlation only.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

_COLUMNS = ("request_id", "otel_trace_id")


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    # a store that created its tables lazily may have made these already
    columns = {column["name"] for column in inspector.get_columns("ai_feedback")}
    indexes = {index["name"] for index in inspector.get_indexes("ai_feedback")}
    for name in _COLUMNS:
        if name not in columns:
            op.add_column("ai_feedback", sa.Column(name, sa.String(255)))
    for name in _COLUMNS:
        if f"ix_ai_feedback_{name}" not in indexes:
            op.create_index(f"ix_ai_feedback_{name}", "ai_feedback", [name, "created_at", "id"])


def downgrade() -> None:
    for name in _COLUMNS:
        op.drop_index(f"ix_ai_feedback_{name}", table_name="ai_feedback")
    with op.batch_alter_table("ai_feedback") as batch:
        for name in _COLUMNS:
            batch.drop_column(name)
