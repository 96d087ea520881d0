"""``DjangoFeedbackStore`` deadlines: a write stuck on PostgreSQL answers within the connect
timeout, and the server itself gives up on it (``lock_timeout`` set for the transaction)."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest
from django.db import connections

from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.core.exceptions import StorageUnavailableError
from feedback_asgi.core.records import FeedbackItem
from feedback_asgi.core.result import Err
from feedback_asgi.integrations.django.store import DjangoFeedbackStore
from tests import services

TIMEOUT = 0.5
SLACK = 0.3

WAITING_FOR_A_LOCK = (
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases=["default", "postgres"])
async def test_a_write_stuck_on_a_lock_answers_in_time_and_the_server_gives_up(
    postgres_alias: str,
) -> None:
    store = DjangoFeedbackStore(
        using=postgres_alias, config=FeedbackConfig(connect_timeout_seconds=TIMEOUT)
    )
    assert (await store.save(FeedbackItem("rating", 1))).is_ok()  # the table is in use
    rival = await asyncpg.connect(
        host=services.PG_HOST, port=services.PG_PORT, user="postgres",
        database=connections[postgres_alias].settings_dict["NAME"],
    )
    try:
        await rival.execute("BEGIN; LOCK TABLE ai_feedback IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        async with asyncio.timeout(5):
            outcome = await store.save(FeedbackItem("rating", 2))
        assert isinstance(outcome, Err)
        assert isinstance(outcome.error, StorageUnavailableError)
        assert time.monotonic() - started <= TIMEOUT + SLACK
        await asyncio.sleep(SLACK)
        assert await rival.fetchval(WAITING_FOR_A_LOCK) == 0  # the server gave up too
    finally:
        await rival.execute("ROLLBACK")
        await rival.close()
        await store.close()
