"""The background loop's exchange store (WSGI): writes off the request thread, retried when
the inner store fails, findable while they wait, drained on close."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from feedback_asgi.core.records import Exchange
from feedback_asgi.integrations.django.background import BackgroundLoop, LoopExchangeStore
from feedback_asgi.storage.memory import MemoryExchangeStore


class FlakyStore(MemoryExchangeStore):
    """Answers ``False`` (as Redis's store does when Redis fails) to its first writes."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def put(self, exchange: Exchange, ttl: float | None = None) -> bool:
        if self.failures > 0:
            self.failures -= 1
            return False
        await super().put(exchange, ttl)
        return True


def _wait_until_written(store: LoopExchangeStore) -> None:
    deadline = time.monotonic() + 10
    while store.pending and time.monotonic() < deadline:
        time.sleep(0.01)


def test_failed_writes_are_retried_on_the_background_loop() -> None:
    background = BackgroundLoop("test-feedback-io")
    inner = FlakyStore(failures=3)
    store = LoopExchangeStore(inner, background, max_pending=100)
    try:
        store.put_nowait(Exchange("t-1", output="one"), 60)
        store.put_nowait(Exchange("t-2", output="two"), 60)
        assert store.pending >= 1  # counted before the background loop picks it up
        found = asyncio.run(store.get("t-1"))  # queued or written: found either way
        assert found is not None
        assert found.output == "one"
        _wait_until_written(store)
        assert store.pending == 0
        assert {e.trace_id for _, e in inner._entries.values()} == {"t-1", "t-2"}
        assert (store.writer.written, store.writer.failed, store.writer.retries) == (2, 0, 3)
        assert store.dropped == 0
        assert store.writer.ttl == 60
    finally:
        asyncio.run(store.close())
        background.stop()


def test_close_drains_what_is_queued() -> None:
    background = BackgroundLoop("test-feedback-io")
    inner = FlakyStore(failures=2)
    store = LoopExchangeStore(inner, background)
    try:
        for n in range(5):
            store.put_nowait(Exchange(f"t-{n}"), 60)
        asyncio.run(store.close())
        assert len(inner) == 5
        assert store.pending == 0
    finally:
        background.stop()


def test_one_wake_up_of_the_background_loop_serves_a_batch_and_the_hand_over_is_bounded() -> None:
    background = BackgroundLoop("test-feedback-io")
    inner = MemoryExchangeStore()
    store = LoopExchangeStore(inner, background, max_pending=10)
    loop = background.loop
    wake_ups = 0
    call_soon_threadsafe = loop.call_soon_threadsafe

    def counted(callback: Any, *args: Any) -> Any:
        nonlocal wake_ups
        wake_ups += 1
        return call_soon_threadsafe(callback, *args)

    busy, release = threading.Event(), threading.Event()

    def occupy() -> None:  # the loop is busy while the request threads hand exchanges over
        busy.set()
        release.wait(10)

    try:
        call_soon_threadsafe(occupy)
        assert busy.wait(10)
        loop.call_soon_threadsafe = counted  # type: ignore[method-assign]
        for n in range(15):
            store.put_nowait(Exchange(f"t-{n}"), 60)
        assert wake_ups == 1
        assert (store.pending, store.dropped) == (10, 5)  # the oldest five dropped, counted
        found = asyncio.run(store._get("t-14"))  # not handed over yet: found all the same
        assert found is not None
        assert found.trace_id == "t-14"
        release.set()
        _wait_until_written(store)
        assert store.pending == 0
        assert {e.trace_id for _, e in inner._entries.values()} == {f"t-{n}" for n in range(5, 15)}
        assert store.writer.written == 10
    finally:
        release.set()
        asyncio.run(store.close())
        background.stop()
