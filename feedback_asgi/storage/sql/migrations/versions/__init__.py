"""Alembic revisions of the feedback-asgi schema, oldest first."""
