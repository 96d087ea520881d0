"""RedisExchangeStore against the real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from feedback_asgi.core.records import Exchange
from feedback_asgi.storage.base import ExchangeStoreProtocol
from feedback_asgi.storage.redis import RedisExchangeStore, make_redis_client

pytestmark = pytest.mark.redis


@pytest.fixture
async def store(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisExchangeStore]:
    store = RedisExchangeStore(make_redis_client(redis_url), prefix=redis_prefix)
    yield store
    await store.close()


def test_implements_the_protocol(store: RedisExchangeStore) -> None:
    assert isinstance(store, ExchangeStoreProtocol)


async def test_round_trip_keeps_every_field(store: RedisExchangeStore) -> None:
    exchange = Exchange(
        "trace-1",
        session_id="s",
        user_id="u",
        request_id="req-1",
        otel_trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        model="gpt-x",
        provider="p",
        input={"prompt": "héllo ☃", "n": [1, 2]},
        output="réponse",
        status=200,
        latency_ms=12.5,
        input_truncated=True,
        metadata={"k": "v"},
        created_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    )
    await store.put(exchange)
    assert await store.get("trace-1") == exchange
    assert store.redis_errors == 0


async def test_unknown_trace_is_none(store: RedisExchangeStore) -> None:
    assert await store.get("nope") is None


async def test_a_stored_exchange_is_never_overwritten(store: RedisExchangeStore) -> None:
    assert await store.put(Exchange("t", output="one")) is True
    assert await store.put(Exchange("t", output="two")) is True  # kept: nothing to retry
    assert await store.put_many([(Exchange("t", output="three"), None),
                                 (Exchange("t2", output="other"), None)]) is True
    got = await store.get("t")
    assert got is not None
    assert got.output == "one"
    second = await store.get("t2")
    assert second is not None
    assert second.output == "other"
    assert store.duplicates == 2


async def test_bytes_bodies_are_stored_as_text(store: RedisExchangeStore) -> None:
    await store.put(Exchange("t", input=b"raw \xe2\x98\x83", output=b"\xff"))
    got = await store.get("t")
    assert got is not None
    assert (got.input, got.output) == ("raw ☃", "\ufffd")


async def test_ttl_expiry_and_default_ttl(
    store: RedisExchangeStore, redis_url: str, redis_prefix: str
) -> None:
    await store.put(Exchange("short"), ttl=0.5)
    await store.put(Exchange("long"))
    # found by its documented key (a SCAN would walk every key other tests left in the server)
    remaining = await store.redis.pttl(f"{redis_prefix}exchange:r:long")
    assert 86_000_000 < remaining <= 86_400_000
    assert await store.get("short") is not None
    await asyncio.sleep(0.6)
    assert await store.get("short") is None
    assert await store.get("long") is not None

    custom = RedisExchangeStore(make_redis_client(redis_url), prefix=redis_prefix, default_ttl=60)
    try:
        await custom.put(Exchange("custom"))
        assert 55_000 < await custom.redis.pttl(f"{redis_prefix}exchange:r:custom") <= 60_000
    finally:
        await custom.close()


async def test_workers_share_exchanges(redis_url: str, redis_prefix: str) -> None:
    one = RedisExchangeStore(make_redis_client(redis_url), prefix=redis_prefix)
    two = RedisExchangeStore(make_redis_client(redis_url), prefix=redis_prefix)
    other_app = RedisExchangeStore(make_redis_client(redis_url), prefix=redis_prefix + "x:")
    try:
        await one.put(Exchange("shared", model="m"))
        got = await two.get("shared")
        assert got is not None
        assert got.model == "m"
        assert await other_app.get("shared") is None
    finally:
        for store in (one, two, other_app):
            await store.close()


async def test_ping_and_unreadable_value(store: RedisExchangeStore, redis_prefix: str) -> None:
    assert await store.ping() >= 0
    await store.redis.set(f"{redis_prefix}exchange:r:broken", b"{not json")
    assert await store.get("broken") is None
    assert store.redis_errors == 0


async def test_writes_get_the_connect_timeout_lookups_a_short_one(redis_url: str) -> None:
    from feedback_asgi.core.config import FeedbackConfig
    from feedback_asgi.storage.factory import build_exchange_store

    config = FeedbackConfig(redis_url=redis_url, connect_timeout_seconds=3.5)
    store = build_exchange_store(config)
    assert isinstance(store, RedisExchangeStore)
    try:
        assert store.write_timeout == 3.5
        assert store.timeout < store.write_timeout
    finally:
        await store.close()
    with pytest.raises(ValueError, match="write_timeout"):
        RedisExchangeStore(make_redis_client(redis_url), write_timeout=0)


async def test_put_many_keeps_each_with_its_own_ttl(
    store: RedisExchangeStore, redis_prefix: str
) -> None:
    items: list[tuple[Exchange, float | None]] = [
        (Exchange(f"many-{n}", output=f"o{n}"), 60.0 if n % 2 else None) for n in range(200)
    ]
    assert await store.put_many(items) is True
    for n in (0, 1, 198, 199):
        got = await store.get(f"many-{n}")
        assert got is not None
        assert got.output == f"o{n}"
    odd = await store.redis.pttl(f"{redis_prefix}exchange:r:many-1")
    even = await store.redis.pttl(f"{redis_prefix}exchange:r:many-0")
    assert 55_000 < odd <= 60_000
    assert 86_000_000 < even <= 86_400_000
    assert await store.put_many([]) is True
    assert store.redis_errors == 0


async def test_put_many_reports_an_unreachable_redis_as_false(redis_prefix: str) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: connections are refused
    store = RedisExchangeStore(
        make_redis_client(f"redis://127.0.0.1:{port}/0", timeout=0.5), prefix=redis_prefix
    )
    try:
        assert await store.put_many([(Exchange("lost"), None)]) is False
        assert store.redis_errors == 1
    finally:
        await store.close()
