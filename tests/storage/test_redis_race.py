"""The classic cache race, provoked deterministically: a reader that read old rows while a
save committed must not publish them (miss, read old, save + invalidate, fill stale)."""

from __future__ import annotations

import asyncio

import pytest

from feedback_asgi.core.records import FeedbackItem, FeedbackType
from feedback_asgi.core.result import Ok
from feedback_asgi.storage.memory import MemoryFeedbackStore
from feedback_asgi.storage.redis import CachedFeedbackStore, make_redis_client
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.redis


class GatedStore(MemoryFeedbackStore):
    """``find_by_session`` takes its snapshot, says so, then waits for the gate to open."""

    def __init__(self) -> None:
        super().__init__()
        self.read_done = asyncio.Event()
        self.gate = asyncio.Event()
        self.gated = False

    async def find_by_session(
        self, session_id: str, *, include_history: bool = False
    ) -> list[FeedbackItem]:
        snapshot = await super().find_by_session(session_id, include_history=include_history)
        if self.gated:
            self.gated = False
            self.read_done.set()
            await self.gate.wait()
        return snapshot


@pytest.fixture
async def gated() -> GatedStore:
    return GatedStore()


def item(session: str) -> FeedbackItem:
    return FeedbackItem(FeedbackType.THUMBS, 1, context={"session_id": session})


async def test_reader_cannot_fill_with_rows_older_than_a_save(
    gated: GatedStore, redis_url: str, redis_prefix: str
) -> None:
    cache = CachedFeedbackStore(gated, make_redis_client(redis_url), prefix=redis_prefix)
    try:
        first = item("s")
        await cache.save(first)
        gated.gated = True
        reader = asyncio.create_task(cache.find_by_session("s"))
        await gated.read_done.wait()  # the reader has missed and holds the old rows
        second = item("s")
        assert isinstance(await cache.save(second), Ok)  # committed and invalidated
        gated.gate.set()
        stale = await reader  # overlapped the save: old rows are a fair answer for it
        assert [i.id for i in stale] == [first.id]
        # Every read that starts after the save sees it, from Redis or not.
        for _ in range(3):
            assert {i.id for i in await cache.find_by_session("s")} == {first.id, second.id}
        assert cache.fills_refused == 1
        assert cache.hits == 2
        assert cache.redis_errors == 0
    finally:
        await cache.close()


async def test_many_concurrent_readers_and_writers_never_leave_a_stale_list(
    redis_url: str, redis_prefix: str
) -> None:
    cache = CachedFeedbackStore(
        MemoryFeedbackStore(), make_redis_client(redis_url), prefix=redis_prefix
    )
    saved: list[str] = []

    async def writer(n: int) -> None:
        for _ in range(n):
            new = item("hot")
            assert isinstance(await cache.save(new), Ok)
            saved.append(new.id)
            # A read that starts after our save returns must contain it.
            assert new.id in {i.id for i in await cache.find_by_session("hot")}
            await asyncio.sleep(0)

    async def reader(n: int) -> None:
        for _ in range(n):
            await cache.find_by_session("hot")

    try:
        await asyncio.gather(*(writer(20) for _ in range(4)), *(reader(40) for _ in range(8)))
        final = {i.id for i in await cache.find_by_session("hot")}
        assert final == set(saved)
        assert len(saved) == 80
        assert cache.hits > 0
    finally:
        await cache.close()


async def test_fill_is_refused_when_an_outage_hid_a_save(
    gated: GatedStore, redis_prefix: str
) -> None:
    """Reader misses; Redis is cut; a save commits but cannot invalidate; Redis is back;
    the reader's fill must still be refused (the epoch moved on first contact)."""
    proxy = await TcpProxy("127.0.0.1", 6379).start()
    cache = CachedFeedbackStore(
        gated, make_redis_client(f"redis://127.0.0.1:{proxy.port}/0"), prefix=redis_prefix
    )
    cache.retry_interval = 0.0
    try:
        first = item("s")
        await cache.save(first)
        gated.gated = True
        reader = asyncio.create_task(cache.find_by_session("s"))
        await gated.read_done.wait()
        proxy.cut()
        second = item("s")
        assert isinstance(await cache.save(second), Ok)
        assert cache.redis_errors >= 1
        proxy.restore()
        gated.gate.set()
        await reader
        found = {i.id for i in await cache.find_by_session("s")}
        assert found == {first.id, second.id}
        assert cache.fills_refused == 1
    finally:
        await cache.close()
        await proxy.close()


async def test_a_burst_of_saves_shares_invalidations_and_each_sees_its_write(
    redis_url: str, redis_prefix: str
) -> None:
    cache = CachedFeedbackStore(
        MemoryFeedbackStore(), make_redis_client(redis_url), prefix=redis_prefix
    )
    sessions = [f"burst-{n}" for n in range(300)]
    try:
        for session in sessions:  # every list cached (empty) before the burst
            assert await cache.find_by_session(session) == []

        async def save_then_read(session: str) -> bool:
            new = item(session)
            assert isinstance(await cache.save(new), Ok)
            return [i.id for i in await cache.find_by_session(session)] == [new.id]

        results = await asyncio.gather(*(save_then_read(s) for s in sessions))
        assert all(results)
        assert cache.invalidation_calls < len(sessions) / 2
        assert cache.redis_errors == 0
    finally:
        await cache.close()
