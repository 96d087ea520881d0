"""Bounded memory and backpressure (PITFALLS items 3, 17, 28), on the raw harness."""

from __future__ import annotations

import asyncio
import tracemalloc
from typing import Any

import pytest

from feedback_asgi.capture.exchange import BodyTee
from feedback_asgi.kit import FeedbackKit
from feedback_asgi.middleware import FeedbackMiddleware
from tests.asgi.conftest import only, stored
from tests.asgi.harness import Message, Receiver, http_scope, request

CHUNK = bytes(range(256)) * 256  # 64 KiB
CHUNKS = 800  # 50 MiB
LIMIT = 65_536
OURS = [tracemalloc.Filter(True, "*/feedback_asgi/*")]


async def warm_up(kit: FeedbackKit) -> None:
    """One small request first, so one-time work (imports, caches) is not measured."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        await send({"type": "http.response.body", "body": b"x" * 100_000})

    async def send(message: Message) -> None:
        await asyncio.sleep(0)

    scope = http_scope("POST", "/", headers=[(b"content-type", b"text/plain")])
    await FeedbackMiddleware(app, kit=kit)(scope, Receiver(*request(b"y" * 100_000)), send)


def fresh_chunk() -> bytes:
    """A new 64 KiB object, as a server or an app would produce (never the same object)."""
    return bytes(len(CHUNK))


def our_bytes() -> tuple[int, int]:
    """(bytes, blocks) currently held by allocations made in feedback_asgi's files."""
    stats = tracemalloc.take_snapshot().filter_traces(OURS).statistics("filename")
    return sum(stat.size for stat in stats), sum(stat.count for stat in stats)


async def test_50_mib_download_streams_with_backpressure_and_bounded_memory() -> None:
    kit = FeedbackKit.for_testing()
    produced = delivered = ahead = 0
    peak = 0

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal produced
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        for index in range(CHUNKS):
            produced += 1
            await send({"type": "http.response.body", "body": fresh_chunk(),
                        "more_body": index < CHUNKS - 1})

    async def slow_send(message: Message) -> None:
        nonlocal delivered, ahead
        await asyncio.sleep(0)
        if message["type"] == "http.response.body":
            delivered += 1
            ahead = max(ahead, produced - delivered)

    middleware = FeedbackMiddleware(app, kit=kit)
    await warm_up(kit)
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        await middleware(http_scope(), Receiver(*request()), slow_send)
        overall = tracemalloc.get_traced_memory()[1] - baseline
        peak = max(peak, our_bytes()[0])
    finally:
        tracemalloc.stop()
    # the whole process's peak (no snapshot taken meanwhile): ours plus one chunk in flight
    assert overall < 4 * LIMIT
    assert delivered == CHUNKS
    assert ahead == 0  # the producer never got ahead of the client
    assert peak < 3 * LIMIT
    exchange = stored(kit)[-1]
    assert exchange.output_truncated is True
    assert exchange.metadata["response_bytes"] == CHUNKS * len(CHUNK)
    assert exchange.metadata["output_body"] == {"binary": True,
                                                "content_type": "application/octet-stream"}


async def test_50_mib_upload_passes_through_with_bounded_memory() -> None:
    kit = FeedbackKit.for_testing()
    received = 0
    peak = 0

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal received
        while True:
            message = await receive()
            received += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(received).encode()})

    def step(index: int) -> Any:
        async def next_message() -> Message:
            return {"type": "http.request", "body": fresh_chunk(), "more_body": index < CHUNKS - 1}

        return next_message

    steps = [step(index) for index in range(CHUNKS)]
    scope = http_scope("POST", "/upload", headers=[(b"content-type", b"text/plain")])
    receiver = Receiver(*steps)
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    middleware = FeedbackMiddleware(app, kit=kit)
    await warm_up(kit)
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        await middleware(scope, receiver, send)
        overall = tracemalloc.get_traced_memory()[1] - baseline
        peak = max(peak, our_bytes()[0])
    finally:
        tracemalloc.stop()
    assert overall < 4 * LIMIT
    assert received == CHUNKS * len(CHUNK)
    assert receiver.calls == CHUNKS
    assert peak < 3 * LIMIT
    exchange = stored(kit)[-1]
    assert exchange.input_truncated is True
    assert exchange.metadata["request_bytes"] == CHUNKS * len(CHUNK)
    assert len(exchange.input) <= LIMIT


async def test_per_chunk_work_is_one_tee_call_and_constant_allocations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kit = FeedbackKit.for_testing()
    calls = 0
    original = BodyTee.add

    def counting_add(self: BodyTee, body: bytes) -> None:
        nonlocal calls
        calls += 1
        original(self, body)

    monkeypatch.setattr(BodyTee, "add", counting_add)
    blocks: list[int] = []
    chunk = b"0123456789"

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for index in range(1000):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if index in (9, 999):
                blocks.append(our_bytes()[1])
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def send(message: Message) -> None:
        pass

    tracemalloc.start()
    try:
        await FeedbackMiddleware(app, kit=kit)(http_scope(), Receiver(*request()), send)
    finally:
        tracemalloc.stop()
    assert calls == 1000
    assert blocks[1] - blocks[0] < 10  # 990 more chunks, no more objects of ours
    assert only(kit).metadata["response_bytes"] == 10_000


async def test_exchange_store_stays_bounded_and_counts_drops() -> None:
    kit = FeedbackKit.for_testing(exchange_max_items=100, capture_request_limit=1000)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    middleware = FeedbackMiddleware(app, kit=kit)
    body = b"a" * 5000
    for _ in range(1000):
        await middleware(http_scope("POST", "/"), Receiver(*request(body)), send_nothing)
    store: Any = kit.exchanges
    assert len(store) == 100
    assert store.dropped == 900
    newest = list(store._entries.values())[-1][1]
    assert newest.metadata["request_bytes"] == 5000
    assert newest.input_truncated is True
    assert newest.input == "a" * 1000


async def send_nothing(message: Message) -> None:
    pass
