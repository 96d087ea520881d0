"""The exchange writer: bounded queue, background drain, errors counted, loop changes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from feedback_asgi.capture.writer import ExchangeWriter
from feedback_asgi.core.records import Exchange
from feedback_asgi.storage.memory import MemoryExchangeStore


class SlowStore(MemoryExchangeStore):
    def __init__(self, gate: asyncio.Event | None = None, fail: bool = False) -> None:
        super().__init__()
        self.gate = gate
        self.fail = fail

    async def put(self, exchange: Exchange, ttl: float | None = None) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise ConnectionError("down")
        await super().put(exchange, ttl)


async def test_drains_in_the_background_and_flushes() -> None:
    store = MemoryExchangeStore()
    writer = ExchangeWriter(store, maxsize=10, ttl=60)
    for n in range(5):
        writer.put_nowait(Exchange(trace_id=f"t{n}"))
    assert writer.depth == 5  # nothing written on the caller's path
    assert await writer.flush()
    assert len(store) == 5
    assert writer.written == 5
    assert writer.alive
    await writer.stop()
    assert not writer.alive


async def test_full_queue_drops_the_oldest_and_counts() -> None:
    gate = asyncio.Event()
    store = SlowStore(gate)
    writer = ExchangeWriter(store, maxsize=3)
    for n in range(10):
        writer.put_nowait(Exchange(trace_id=f"t{n}"))
    assert writer.depth == 3
    assert writer.dropped == 7
    assert writer.find("t9") is not None
    assert writer.find("t0") is None
    gate.set()
    assert await writer.flush()
    assert {e.trace_id for _, e in store._entries.values()} == {"t7", "t8", "t9"}
    await writer.stop()


class FlakyStore(MemoryExchangeStore):
    """Fails its next ``failures`` writes (raising, or answering ``False`` as Redis's store
    does), then keeps what it is given."""

    def __init__(self, failures: int, *, raises: bool = False) -> None:
        super().__init__()
        self.failures = failures
        self.raises = raises
        self.tries = 0
        self.ttls: list[float | None] = []

    async def put(self, exchange: Exchange, ttl: float | None = None) -> bool:
        self.tries += 1
        self.ttls.append(ttl)
        if self.failures > 0:
            self.failures -= 1
            if self.raises:
                raise ConnectionError("down")
            return False
        await super().put(exchange, ttl)
        return True


@pytest.mark.parametrize("raises", [False, True])
async def test_a_failed_write_is_retried_until_it_lands(raises: bool) -> None:
    store = FlakyStore(3, raises=raises)
    writer = ExchangeWriter(store, ttl=60)
    for n in range(4):
        writer.put_nowait(Exchange(trace_id=f"t{n}"))
    await asyncio.sleep(0.02)  # the first tries of t0-t2 failed: they wait, still findable
    assert writer.written == 1
    assert writer.find("t0") is not None
    assert writer.find("t3") is None  # written, no longer the writer's
    assert await writer.flush()
    assert sorted(e.trace_id for _, e in store._entries.values()) == ["t0", "t1", "t2", "t3"]
    assert (writer.written, writer.failed, writer.dropped, writer.retries) == (4, 0, 0, 3)
    assert store.tries == 7  # one try each, then one retry of each of the 3 that failed
    assert store.ttls[:4] == [60] * 4
    # a retry keeps the exchange only as long as it had left
    assert all(ttl is not None and 59 < ttl < 60 for ttl in store.ttls[4:])
    assert writer.errors.total() == 0
    await writer.stop()


async def test_a_store_down_past_the_ttl_gives_up_counted_and_bounded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FlakyStore(10**9, raises=True)
    writer = ExchangeWriter(store, maxsize=3, ttl=0.3)
    for n in range(10):
        writer.put_nowait(Exchange(trace_id=f"t{n}"))
        await asyncio.sleep(0)
        assert writer.depth <= 3  # the queue's capacity still bounds memory
    async with asyncio.timeout(10):
        assert await writer.flush(max_wait=10)
    assert writer.written == 0
    assert writer.dropped + writer.failed == 10
    assert writer.dropped == 6  # the one being retried is not in the queue
    assert writer.failed == 4
    assert writer.retries > 0
    assert writer.errors.count("exchange_write") == 4
    assert len(store) == 0
    retrying = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retrying) == 1, "logged once per outage, not per try"
    await writer.stop()


async def test_stop_drains_retries() -> None:
    store = FlakyStore(4)
    writer = ExchangeWriter(store, ttl=60)
    for n in range(5):
        writer.put_nowait(Exchange(trace_id=f"t{n}"))
    await asyncio.sleep(0)
    await writer.stop(max_wait=5)
    assert not writer.alive
    assert len(store) == 5
    assert (writer.written, writer.failed, writer.retries) == (5, 0, 4)


async def test_stop_drains_within_a_bounded_wait() -> None:
    gate = asyncio.Event()
    writer = ExchangeWriter(SlowStore(gate))
    writer.put_nowait(Exchange(trace_id="stuck"))
    await asyncio.sleep(0)
    async with asyncio.timeout(2):
        await writer.stop(max_wait=0.1)
    assert not writer.alive
    assert writer.written == 0


def test_survives_event_loop_changes() -> None:
    store = MemoryExchangeStore()
    writer = ExchangeWriter(store)

    async def one(n: int) -> Any:
        writer.put_nowait(Exchange(trace_id=f"t{n}"))
        return await writer.flush()

    assert asyncio.run(one(1))
    assert asyncio.run(one(2))  # a new loop: the drainer starts again on it
    assert len(store) == 2
    writer.put_nowait(Exchange(trace_id="no-loop"))  # no running loop: queued
    assert asyncio.run(writer.flush())
    assert len(store) == 3


async def test_health_reports_the_retries() -> None:
    from feedback_asgi.core.config import FeedbackConfig
    from feedback_asgi.kit import FeedbackKit
    from feedback_asgi.storage.memory import MemoryFeedbackStore

    store = FlakyStore(2)
    kit = FeedbackKit(FeedbackConfig(database_url="memory://", secret_key="k" * 32),
                      store=MemoryFeedbackStore(), exchanges=store)
    kit.writer.put_nowait(Exchange(trace_id="t-health"))
    assert await kit.writer.flush()
    queue = (await kit.health())["exchange_queue"]
    assert (queue["written"], queue["retries"], queue["failed"]) == (1, 2, 0)
    await kit.shutdown()


class BatchStore(MemoryExchangeStore):
    """Keeps a whole batch per ``put_many`` call, as Redis's pipeline does; counts calls
    and fails its next ``failures`` of them."""

    def __init__(self, failures: int = 0) -> None:
        super().__init__()
        self.failures = failures
        self.batches: list[list[tuple[str, float | None]]] = []

    async def put(self, exchange: Exchange, ttl: float | None = None) -> None:
        raise AssertionError("a store with put_many gets every write through it")

    async def put_many(self, items: list[tuple[Exchange, float | None]]) -> bool:
        self.batches.append([(exchange.trace_id, ttl) for exchange, ttl in items])
        if self.failures > 0:
            self.failures -= 1
            return False
        for exchange, ttl in items:
            await super().put(exchange, ttl)
        return True


async def test_a_backlog_goes_to_put_many_in_bounded_batches() -> None:
    from feedback_asgi.capture.writer import WRITE_BATCH_MAX

    store = BatchStore()
    writer = ExchangeWriter(store, ttl=60)
    count = 2 * WRITE_BATCH_MAX + 10
    for n in range(count):
        writer.put_nowait(Exchange(trace_id=f"t{n}"))
    assert await writer.flush()
    assert [len(batch) for batch in store.batches] == [WRITE_BATCH_MAX, WRITE_BATCH_MAX, 10]
    assert [trace for batch in store.batches for trace, _ in batch] == [
        f"t{n}" for n in range(count)
    ]  # in capture order
    assert all(ttl == 60 for batch in store.batches for _, ttl in batch)
    assert len(store) == count
    assert (writer.written, writer.failed, writer.retries) == (count, 0, 0)
    await writer.stop()


async def test_a_failed_batch_is_retried_whole_and_findable_meanwhile() -> None:
    store = BatchStore(failures=2)
    writer = ExchangeWriter(store, ttl=60)
    for n in range(3):
        writer.put_nowait(Exchange(trace_id=f"t{n}"))
    for _ in range(100):
        if store.batches:
            break
        await asyncio.sleep(0.01)
    assert writer.written == 0
    assert writer.pending == 3
    assert writer.find("t1") is not None  # in flight, not in the queue
    writer.put_nowait(Exchange(trace_id="t-late"))  # waits behind the batch in backoff
    assert await writer.flush()
    tries = [[trace for trace, _ in batch] for batch in store.batches]
    assert tries == [["t0", "t1", "t2"]] * 3 + [["t-late"]]
    retried_ttls = [ttl for batch in store.batches[1:3] for _, ttl in batch]
    assert all(ttl is not None and 59 < ttl < 60 for ttl in retried_ttls)
    assert (writer.written, writer.failed, writer.retries) == (4, 0, 6)
    assert writer.pending == 0
    await writer.stop()


async def test_only_the_failed_writes_of_a_batch_are_retried() -> None:
    store = FlakyStore(1)
    writer = ExchangeWriter(store, ttl=60)
    for n in range(3):
        writer.put_nowait(Exchange(trace_id=f"t{n}"))
    assert await writer.flush()
    assert store.tries == 4  # t0 failed and was tried again; t1 and t2 once each
    assert (writer.written, writer.retries) == (3, 1)
    await writer.stop()
