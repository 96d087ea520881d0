"""The SQL store on a server that accepts connections and never answers (PostgreSQL, MariaDB).

Through a :class:`~tests.tcp_proxy.TcpProxy` that goes silent, from the start (cold pool) or
after use (warm pool: the pooled connections then swallow every byte): writes, the reads a
post needs and the health ping each answer ``StorageUnavailableError`` within the connect
timeout, 64 at once as fast as one; a connection cut short is never handed out again once
the server answers; and the server gives up on a write stuck on a lock by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.core.exceptions import StorageUnavailableError
from feedback_asgi.core.records import FeedbackItem
from feedback_asgi.core.result import Err, Ok
from feedback_asgi.storage.sql.store import SqlFeedbackStore
from tests import services
from tests.tcp_proxy import TcpProxy

TIMEOUT = 0.5
SLACK = 0.3
"""What scheduling on a busy machine may add to a deadline."""


@pytest.fixture(params=["postgres", "mysql"])
def live_url(request: pytest.FixtureRequest) -> str:
    """A private database on PostgreSQL or MariaDB."""
    return services.database_url_for(request)


@contextlib.asynccontextmanager
async def proxied(url: str, **settings: Any) -> AsyncIterator[tuple[SqlFeedbackStore, TcpProxy]]:
    parsed = make_url(url)
    assert parsed.host is not None
    assert parsed.port is not None
    proxy = await TcpProxy(parsed.host, parsed.port).start()
    config = FeedbackConfig(connect_timeout_seconds=TIMEOUT, **settings)
    store = SqlFeedbackStore(parsed.set(port=proxy.port), config=config)
    try:
        yield store, proxy
    finally:
        await store.close()
        await proxy.close()


async def timed(call: Awaitable[Any]) -> tuple[float, Any]:
    """Seconds ``call`` took, and its result or the exception it raised."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(10):  # a hang fails the test instead of stalling it
            outcome: Any = await call
    except StorageUnavailableError as exc:
        outcome = exc
    return time.monotonic() - started, outcome


def unavailable(outcome: Any) -> bool:
    if isinstance(outcome, Err):
        outcome = outcome.error
    return isinstance(outcome, StorageUnavailableError)


async def check_silent(store: SqlFeedbackStore) -> None:
    """Every feedback-path call answers 'unavailable' within the deadline, 64 saves too."""
    calls = {
        "save": store.save(FeedbackItem("rating", 3)),
        "save_many": store.save_many([FeedbackItem("rating", 3)]),
        "get": store.get("nothing"),
        "history": store.history("nothing"),
        "find_by_session": store.find_by_session("s"),
        "ping": store.ping(),
    }
    for name, call in calls.items():
        seconds, outcome = await timed(call)
        assert unavailable(outcome), (name, outcome)
        assert seconds <= TIMEOUT + SLACK, (name, seconds)
    many = await asyncio.gather(*(timed(store.save(FeedbackItem("rating", 1))) for _ in range(64)))
    assert all(unavailable(outcome) for _, outcome in many)
    assert max(seconds for seconds, _ in many) <= TIMEOUT + SLACK


async def test_a_silent_warm_pool_answers_in_time_and_hands_out_no_broken_connection(
    live_url: str,
) -> None:
    async with proxied(live_url) as (store, proxy):
        before = FeedbackItem("rating", 4, context={"session_id": "s"})
        assert await store.save(before) == Ok(before.id)
        await asyncio.gather(*(store.ping() for _ in range(8)))  # several pooled connections
        pool = (await store.read_engine()).sync_engine.pool
        invalidated: list[object] = []
        event.listen(pool, "invalidate", lambda *args: invalidated.append(args[0]))

        proxy.silence()
        await check_silent(store)
        assert invalidated, "connections cut short mid-statement are invalidated"
        for _ in range(50):  # callers are answered at their deadline; the batch unwinds after
            if pool.checkedout() == 0:
                break
            await asyncio.sleep(0.02)
        assert pool.checkedout() == 0  # nothing leaked by the deadlines

        proxy.restore()
        cut_short = len(invalidated)
        for _ in range(3):  # more than the pool holds: every pooled connection is used
            outcomes = await asyncio.gather(
                *(store.ping() for _ in range(8)),
                *(store.save(FeedbackItem("rating", 5, context={"session_id": "s"}))
                  for _ in range(8)),
                store.find_by_session("s"),
            )
            assert all(not isinstance(o, Err) for o in outcomes), outcomes
        # a connection left desynced by the silence would have failed its pre-ping or
        # statement here, and been invalidated then
        assert len(invalidated) == cut_short
        assert len(await store.find_by_session("s")) == 25


async def test_a_silent_cold_pool_answers_in_time_then_recovers(live_url: str) -> None:
    async with proxied(live_url) as (store, proxy):
        proxy.silence()  # never answered: the tables are not even created yet
        await check_silent(store)
        proxy.restore()
        item = FeedbackItem("rating", 2, context={"session_id": "s"})
        seconds, outcome = await timed(store.save(item))
        assert outcome == Ok(item.id)
        assert seconds < 1.0
        assert [i.id for i in await store.find_by_session("s")] == [item.id]


async def _session_settings(store: SqlFeedbackStore) -> tuple[Any, ...]:
    query = (
        "SELECT current_setting('statement_timeout'), current_setting('lock_timeout')"
        if store.dialect_name == "postgresql"
        else "SELECT @@max_statement_time, @@innodb_lock_wait_timeout, @@lock_wait_timeout"
    )
    async with (await store.read_engine()).connect() as conn:
        row = (await conn.execute(text(query))).one()
    return tuple(row)


async def test_each_connection_carries_the_server_side_limits(live_url: str) -> None:
    store = SqlFeedbackStore(
        live_url, config=FeedbackConfig(connect_timeout_seconds=1.5, statement_timeout_seconds=7)
    )
    try:
        settings = await _session_settings(store)
    finally:
        await store.close()
    if store.dialect_name == "postgresql":
        assert settings == ("7s", "1500ms")
    else:
        assert settings == (7.0, 2, 2)  # lock waits in whole seconds, rounded up


@contextlib.asynccontextmanager
async def table_locked(url: str) -> AsyncIterator[str]:
    """Another client holding ``ai_feedback`` so that no one else can write it; yields the
    query that counts the connections waiting for that lock."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                await conn.execute(text("BEGIN"))
                await conn.execute(text("LOCK TABLE ai_feedback IN ACCESS EXCLUSIVE MODE"))
                yield ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                       " AND wait_event_type = 'Lock'")
            else:
                await conn.execute(text("LOCK TABLES ai_feedback WRITE"))
                yield ("SELECT count(*) FROM information_schema.processlist"
                       " WHERE db = DATABASE() AND state LIKE 'Waiting for table metadata lock'")
            await conn.rollback()
    finally:
        await engine.dispose()


async def test_the_server_gives_up_on_a_write_stuck_on_a_lock(live_url: str) -> None:
    store = SqlFeedbackStore(live_url, config=FeedbackConfig(connect_timeout_seconds=TIMEOUT))
    watcher = create_async_engine(live_url)
    try:
        assert (await store.save(FeedbackItem("rating", 1))).is_ok()  # the table exists
        async with table_locked(live_url) as waiting:
            seconds, outcome = await timed(store.save(FeedbackItem("rating", 2)))
            assert unavailable(outcome), outcome
            assert seconds <= TIMEOUT + SLACK
            # The client hung up at its deadline; the server stops waiting by itself
            # (PostgreSQL lock_timeout, MariaDB lock_wait_timeout in whole seconds).
            await asyncio.sleep(1.0 + SLACK if store.dialect_name != "postgresql" else SLACK)
            async with watcher.connect() as conn:
                assert await conn.scalar(text(waiting)) == 0
    finally:
        await store.close()
        await watcher.dispose()
