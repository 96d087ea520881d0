"""Redis down: cut mid-use, unreachable from the start, silent. The cache is bypassed,
nothing fails for the caller, counters move, one log line per outage, and when Redis is
back it is used again with no list from before the outage."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Sequence

import pytest

from feedback_asgi.capture.writer import ExchangeWriter
from feedback_asgi.core.exceptions import StorageUnavailableError
from feedback_asgi.core.records import Exchange, FeedbackItem, FeedbackType
from feedback_asgi.core.result import Ok
from feedback_asgi.storage.memory import MemoryFeedbackStore
from feedback_asgi.storage.redis import (
    CachedFeedbackStore,
    RedisExchangeStore,
    make_redis_client,
)
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.redis

LOGGER = "feedback_asgi.storage.redis"


def item(session: str) -> FeedbackItem:
    return FeedbackItem(FeedbackType.RATING, 3, context={"session_id": session})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
async def proxy(redis_url: str) -> AsyncIterator[TcpProxy]:
    proxy = await TcpProxy("127.0.0.1", 6379).start()
    yield proxy
    await proxy.close()


@pytest.fixture
async def cache(proxy: TcpProxy, redis_prefix: str) -> AsyncIterator[CachedFeedbackStore]:
    client = make_redis_client(f"redis://127.0.0.1:{proxy.port}/0", timeout=0.5)
    store = CachedFeedbackStore(MemoryFeedbackStore(), client, prefix=redis_prefix)
    store.retry_interval = 0.05
    yield store
    await store.close()


async def test_cut_mid_use_falls_back_then_uses_redis_again_without_stale_lists(
    cache: CachedFeedbackStore, proxy: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    before = item("s")
    await cache.save(before)
    assert [i.id for i in await cache.find_by_session("s")] == [before.id]
    assert [i.id for i in await cache.find_by_session("s")] == [before.id]
    assert cache.hits == 1

    caplog.set_level(logging.INFO, logger=LOGGER)
    proxy.cut()
    during = [item("s") for _ in range(3)]
    for new in during:
        assert isinstance(await cache.save(new), Ok)  # invalidation cannot reach Redis
        found = {i.id for i in await cache.find_by_session("s")}
        assert new.id in found
        await asyncio.sleep(0.06)  # past retry_interval: each call tries Redis again
    assert cache.redis_errors >= 3
    assert not cache.redis_available
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, "logged once per outage, not per request"

    proxy.restore()
    await asyncio.sleep(0.06)
    hits = cache.hits
    expected = {before.id, *(i.id for i in during)}
    # The entry cached before the cut would still match its version key: the epoch
    # bump on first contact is what keeps it from being served.
    assert {i.id for i in await cache.find_by_session("s")} == expected
    assert {i.id for i in await cache.find_by_session("s")} == expected
    assert cache.hits == hits + 1, "Redis is used again"
    assert cache.redis_available
    assert cache.namespace_resets >= 2  # first contact, and after the outage
    assert any("reachable again" in r.getMessage() for r in caplog.records)


async def test_redis_unreachable_from_the_start(redis_prefix: str) -> None:
    client = make_redis_client(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    cache = CachedFeedbackStore(MemoryFeedbackStore(), client, prefix=redis_prefix)
    try:
        saved = [item("s") for _ in range(5)]
        for new in saved:
            assert isinstance(await cache.save(new), Ok)
            assert new.id in {i.id for i in await cache.find_by_session("s")}
        assert {i.id for i in await cache.find_by_type("rating")} == {i.id for i in saved}
        assert cache.redis_errors >= 1
        # Within the pause after the first failure, calls skip Redis without trying it.
        assert cache.redis_bypassed >= 1
        assert cache.redis_errors + cache.redis_bypassed >= 11
        assert cache.hits == 0
        with pytest.raises(StorageUnavailableError):
            await cache.ping_redis()
        assert await cache.ping() >= 0  # the backing store is what counts as "up"
    finally:
        await cache.close()


async def test_silent_redis_costs_at_most_the_timeout(redis_prefix: str) -> None:
    held: list[asyncio.StreamWriter] = []

    async def accept_and_say_nothing(
        _reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = make_redis_client(f"redis://127.0.0.1:{port}/0", timeout=0.2)
    cache = CachedFeedbackStore(MemoryFeedbackStore(), client, prefix=redis_prefix)
    cache.timeout = 0.2
    try:
        new = item("s")
        async with asyncio.timeout(5):  # a stall would hang here; the call must fall back
            assert isinstance(await cache.save(new), Ok)
            assert [i.id for i in await cache.find_by_session("s")] == [new.id]
        assert cache.redis_errors == 1
        assert cache.redis_bypassed == 1
    finally:
        await cache.close()
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_exchange_store_survives_a_cut_and_recovers(
    proxy: TcpProxy, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_redis_client(f"redis://127.0.0.1:{proxy.port}/0", timeout=0.5)
    store = RedisExchangeStore(client, prefix=redis_prefix)
    store.retry_interval = 0.05
    try:
        await store.put(Exchange("t-before", output="hello"))
        assert (await store.get("t-before")) is not None
        caplog.set_level(logging.WARNING, logger=LOGGER)
        proxy.cut()
        assert await store.put(Exchange("t-during")) is False  # reported, never raised
        assert await store.get("t-before") is None  # unreachable reads as unknown
        assert store.redis_errors >= 1
        assert len(caplog.records) == 1
        with pytest.raises(StorageUnavailableError):
            await store.ping()
        proxy.restore()
        await asyncio.sleep(0.06)
        assert await store.ping() >= 0
        got = await store.get("t-before")
        assert got is not None
        assert got.output == "hello"
        assert await store.get("t-during") is None
    finally:
        await store.close()


async def test_exchange_store_unreachable_from_the_start(redis_prefix: str) -> None:
    client = make_redis_client(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    store = RedisExchangeStore(client, prefix=redis_prefix)
    try:
        await store.put(Exchange("t"))
        assert await store.get("t") is None
        assert store.redis_errors == 1
        assert store.redis_bypassed == 1
    finally:
        await store.close()


async def test_writer_retries_through_a_cut_and_the_write_lands(
    proxy: TcpProxy, redis_url: str, redis_prefix: str
) -> None:
    store = RedisExchangeStore(
        make_redis_client(f"redis://127.0.0.1:{proxy.port}/0", timeout=0.5), prefix=redis_prefix
    )
    direct = RedisExchangeStore(make_redis_client(redis_url), prefix=redis_prefix)
    writer = ExchangeWriter(store, ttl=60)
    try:
        assert await store.put(Exchange("t-before")) is True
        proxy.cut()
        writer.put_nowait(Exchange("t-cut", output="kept"))
        for _ in range(100):
            if writer.retries:
                break
            await asyncio.sleep(0.01)
        assert writer.retries > 0  # the put reported failure; the writer kept it
        assert writer.find("t-cut") is not None
        assert await direct.get("t-cut") is None
        proxy.restore()
        assert await writer.flush(max_wait=10)
        got = await direct.get("t-cut")
        assert got is not None
        assert got.output == "kept"
        assert (writer.written, writer.failed, writer.dropped) == (1, 0, 0)
        assert 0 < await direct.redis.pttl(direct._key("t-cut")) <= 60_000
    finally:
        await writer.stop()
        await store.close()
        await direct.close()


class CountingExchangeStore(RedisExchangeStore):
    """The real store, noting the size of each pipeline that Redis took."""

    pipelines: list[int]

    async def put_many(self, items: Sequence[tuple[Exchange, float | None]]) -> bool:
        kept = await super().put_many(items)
        if kept:
            self.pipelines.append(len(items))
        return kept


async def test_a_backlog_from_a_cut_drains_in_a_few_pipelines(
    proxy: TcpProxy, redis_url: str, redis_prefix: str
) -> None:
    from feedback_asgi.capture.writer import WRITE_BATCH_MAX

    store = CountingExchangeStore(
        make_redis_client(f"redis://127.0.0.1:{proxy.port}/0", timeout=0.5), prefix=redis_prefix
    )
    store.pipelines = []
    direct = RedisExchangeStore(make_redis_client(redis_url), prefix=redis_prefix)
    writer = ExchangeWriter(store, ttl=60)
    count = 500
    try:
        proxy.cut()
        writer.put_nowait(Exchange("backlog-0"))
        for _ in range(200):
            if writer.retries:
                break
            await asyncio.sleep(0.01)
        assert writer.retries > 0
        for n in range(1, count):
            writer.put_nowait(Exchange(f"backlog-{n}", output=str(n)))
        assert store.pipelines == []
        proxy.restore()
        assert await writer.flush(max_wait=20)
        # the retried batch, then the backlog in full batches: not one round trip each
        assert sum(store.pipelines) == count
        assert len(store.pipelines) <= 1 + -(-(count - 1) // WRITE_BATCH_MAX)
        assert (writer.written, writer.failed, writer.dropped) == (count, 0, 0)
        for n in (1, count // 2, count - 1):
            got = await direct.get(f"backlog-{n}")
            assert got is not None
            assert got.output == str(n)
    finally:
        await writer.stop()
        await store.close()
        await direct.close()


async def test_a_failed_lookup_pauses_lookups_but_not_writes(
    proxy: TcpProxy, redis_prefix: str
) -> None:
    store = RedisExchangeStore(
        make_redis_client(f"redis://127.0.0.1:{proxy.port}/0", timeout=0.5), prefix=redis_prefix
    )
    store.retry_interval = 60.0
    try:
        proxy.cut()
        assert await store.get("t") is None
        proxy.restore()
        assert await store.get("t") is None  # skipped: the pause after a failure
        assert store.redis_bypassed == 1
        assert await store.put(Exchange("t", output="late")) is True  # writes are not skipped
        got = await store.get("t")  # the write showed Redis answers again
        assert got is not None
        assert got.output == "late"
        assert store.healthy
    finally:
        await store.close()


async def test_connections_broken_by_a_cut_are_replaced_without_a_failure(
    proxy: TcpProxy, redis_prefix: str
) -> None:
    store = RedisExchangeStore(
        make_redis_client(f"redis://127.0.0.1:{proxy.port}/0", timeout=0.5), prefix=redis_prefix
    )
    try:
        assert await store.put(Exchange("t-pool", output="kept")) is True
        for _ in range(2):  # a pool of several connections, all opened before the cut
            assert all(await asyncio.gather(*(store.get("t-pool") for _ in range(20))))
        proxy.cut()
        proxy.restore()
        # a Redis that is back must not look down because the pool held connections the
        # cut broke: each is replaced as it is picked up, not reported as a failure
        for _ in range(3):
            found = await asyncio.gather(*(store.get("t-pool") for _ in range(20)))
            assert all(found), found
        assert store.redis_errors == 0
        assert store.healthy
    finally:
        await store.close()
