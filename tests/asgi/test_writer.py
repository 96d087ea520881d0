"""The exchange writer: bounded queue, background drain, errors counted, loop changes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from feedback_asgi.exchange_writer import ExchangeWriter
from feedback_asgi.storage.memory import MemoryExchangeStore
from feedback_asgi.types import Exchange


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


async def test_store_errors_are_counted_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    writer = ExchangeWriter(SlowStore(fail=True))
    for n in range(4):
        writer.put_nowait(Exchange(trace_id=f"t{n}"))
    assert await writer.flush()
    assert writer.failed == 4
    assert writer.errors.count("exchange_write") == 4
    assert len([r for r in caplog.records if "exchange_write" in r.getMessage()]) == 1
    await writer.stop()


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
