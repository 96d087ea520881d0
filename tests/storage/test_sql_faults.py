"""Database outages: saves answer Err(StorageUnavailableError) in time, reads raise it,
and the same store works again once the database is back."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.engine import make_url

from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.core.exceptions import StorageUnavailableError
from feedback_asgi.core.records import FeedbackItem
from feedback_asgi.core.result import Err, Ok
from feedback_asgi.storage.sql.store import SqlFeedbackStore
from tests import services
from tests.tcp_proxy import TcpProxy

TIMEOUT = 0.5
CONFIG = FeedbackConfig(connect_timeout_seconds=TIMEOUT)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A port that accepts connections and never says anything (a hung server)."""
    held: list[asyncio.StreamWriter] = []

    async def swallow(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


@pytest.fixture(params=["refused", "silent"])
def dead_port(request: pytest.FixtureRequest) -> int:
    """A port where no database answers: nothing listens, or a listener stays silent."""
    if request.param == "refused":
        return _closed_port()
    port: int = request.getfixturevalue("silent_port")
    return port


@pytest.fixture(params=["postgres", "mysql"])
def live_url(request: pytest.FixtureRequest) -> str:
    """A private database on PostgreSQL or MariaDB."""
    return services.database_url_for(request)


def _unavailable(result: object) -> bool:
    return isinstance(result, Err) and isinstance(result.error, StorageUnavailableError)


@pytest.mark.parametrize(
    "template",
    ["postgresql+asyncpg://postgres@127.0.0.1:{port}/x", "mysql+asyncmy://root@127.0.0.1:{port}/x"],
)
async def test_unreachable_database(template: str, dead_port: int) -> None:
    store = SqlFeedbackStore(template.format(port=dead_port), config=CONFIG)
    started = time.monotonic()
    result = await store.save(FeedbackItem("thumbs", 1))
    elapsed = time.monotonic() - started
    assert _unavailable(result), result
    assert elapsed < TIMEOUT + 1.5  # bounded by the connect timeout, not a hang
    many = await store.save_many([FeedbackItem("thumbs", 1)])
    assert _unavailable(many), many
    with pytest.raises(StorageUnavailableError):
        await store.find_by_session("s")
    with pytest.raises(StorageUnavailableError):
        await store.aggregate()
    with pytest.raises(StorageUnavailableError):
        await store.ping()
    with pytest.raises(StorageUnavailableError):
        [item async for item in store.iter_items()]
    await store.close()


async def test_outage_mid_use_and_recovery(live_url: str) -> None:
    url = make_url(live_url)
    assert url.host is not None
    assert url.port is not None
    proxy = await TcpProxy(url.host, url.port).start()
    store = SqlFeedbackStore(url.set(port=proxy.port), config=CONFIG)
    try:
        before = FeedbackItem("rating", 4, context={"session_id": "s"})
        assert await store.save(before) == Ok(before.id)
        assert [i.id for i in await store.find_by_session("s")] == [before.id]

        proxy.cut()
        during = await asyncio.gather(*(store.save(FeedbackItem("rating", 1)) for _ in range(5)))
        assert all(_unavailable(result) for result in during), during
        with pytest.raises(StorageUnavailableError):
            await store.find_by_session("s")
        with pytest.raises(StorageUnavailableError):
            await store.ping()

        proxy.restore()
        after = FeedbackItem("rating", 5, context={"session_id": "s"})
        assert await store.save(after) == Ok(after.id)
        assert [i.id for i in await store.find_by_session("s")] == [after.id, before.id]
        assert (await store.aggregate()).total_count == 2
        assert await store.ping() >= 0
    finally:
        await store.close()
        await proxy.close()
