"""The SQLAlchemy feedback store: SQLite (the embedded default), PostgreSQL, MariaDB/MySQL.

* :mod:`.store`: :class:`~feedback_asgi.storage.sql.store.SqlFeedbackStore`, its engine and
  group commit; :mod:`.schema`: the ``ai_feedback`` table; :mod:`.rows`: rows to items;
  :mod:`.rollup`: the hourly rollup; :mod:`.stats`: stats queries; :mod:`.deadlines`: the
  driver, pool and server limits on every wait; :mod:`.migrations`: Alembic revisions.
"""
