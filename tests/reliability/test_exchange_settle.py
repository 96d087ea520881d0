"""An exchange captured by one worker moments before another worker gets the feedback on it:
the endpoint waits a little for it (fresh tokens only), so the row still holds the exchange."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.core.records import Exchange
from feedback_asgi.kit import FeedbackKit
from feedback_asgi.storage.redis.exchanges import RedisExchangeStore
from feedback_asgi.web.endpoint import EXCHANGE_SETTLE_SECONDS
from tests.endpoint.apps import build, client

pytestmark = pytest.mark.redis


@pytest.fixture
async def kits(redis_url: str, redis_prefix: str) -> AsyncIterator[tuple[FeedbackKit, FeedbackKit]]:
    def make() -> FeedbackKit:
        return FeedbackKit(FeedbackConfig(
            database_url="memory://", redis_url=redis_url, redis_key_prefix=redis_prefix,
            secret_key="settle-tests-secret-key-0123456789abcdef"))

    first, second = make(), make()
    try:
        yield first, second
    finally:
        await first.shutdown()
        await second.shutdown()


async def _post(kit: FeedbackKit, token: str, trace: str) -> tuple[float, dict[str, object]]:
    started = time.monotonic()
    async with client(build("endpoint", kit).app) as http:
        response = await http.post("/feedback", json={"trace_id": trace, "type": "thumbs",
                                                      "value": "up"},
                                   headers={"X-Feedback-Token": token})
    assert response.status_code == 201, response.text
    item = await kit.store.get(response.json()["feedback_id"])
    assert item is not None
    return time.monotonic() - started, dict(item.context)


async def _post_fresh_then_shut_down(
    kit: FeedbackKit, trace: str
) -> tuple[float, dict[str, object]]:
    """Post feedback with a token just signed by ``kit`` itself, then shut ``kit`` down."""
    try:
        return await _post(kit, kit.signer.sign(trace), trace)
    finally:
        await kit.shutdown()


async def _store_late(kit: FeedbackKit, trace_id: str, question: str, answer: str) -> None:
    """The capturing worker's writer, running 0.3 s behind."""
    await asyncio.sleep(0.3)
    await kit.exchanges.put(Exchange(trace_id=trace_id, input=question, output=answer))


async def test_a_late_exchange_from_another_worker_is_awaited(
    kits: tuple[FeedbackKit, FeedbackKit],
) -> None:
    capturing, answering = kits
    token = capturing.signer.sign("t-late")
    late = asyncio.create_task(_store_late(capturing, "t-late", "q", "a"))
    seconds, context = await _post(answering, token, "t-late")
    await late
    assert (context["input"], context["output"]) == ("q", "a")
    assert 0.25 <= seconds < EXCHANGE_SETTLE_SECONDS + 0.5


async def test_an_old_token_does_not_wait_for_a_missing_exchange(
    kits: tuple[FeedbackKit, FeedbackKit],
) -> None:
    _, answering = kits
    ttl = answering.config.token_ttl_seconds
    old = answering.signer.sign("t-old", ttl_seconds=ttl - 30)  # signed 30 s ago
    seconds, context = await _post(answering, old, "t-old")
    assert "input" not in context
    assert seconds < EXCHANGE_SETTLE_SECONDS / 2


async def test_a_late_exchange_is_awaited_even_during_the_pause_after_a_redis_timeout(
    kits: tuple[FeedbackKit, FeedbackKit],
) -> None:
    capturing, answering = kits
    await answering.startup()
    exchanges = answering.exchanges
    assert isinstance(exchanges, RedisExchangeStore)
    normal = exchanges.timeout
    exchanges.timeout = 1e-9  # a lookup that cannot answer in time: what a busy loop does
    assert await exchanges.get("t-any") is None
    exchanges.timeout = normal
    assert exchanges.redis_errors == 1
    assert not exchanges.healthy
    token = capturing.signer.sign("t-paused")
    late = asyncio.create_task(_store_late(capturing, "t-paused", "q2", "a2"))
    seconds, context = await _post(answering, token, "t-paused")
    await late
    assert (context["input"], context["output"]) == ("q2", "a2")
    assert seconds < EXCHANGE_SETTLE_SECONDS + 0.5


async def test_a_refused_redis_is_not_waited_for() -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on: connections are refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    kit = FeedbackKit(FeedbackConfig(
        database_url="memory://", redis_url=f"redis://127.0.0.1:{port}/0",
        secret_key="settle-tests-secret-key-0123456789abcdef"))
    seconds, context = await _post_fresh_then_shut_down(kit, "t-refused")
    assert "input" not in context
    assert seconds < EXCHANGE_SETTLE_SECONDS / 2


async def test_a_refused_connection_is_not_worth_waiting_for() -> None:
    import socket

    from feedback_asgi.storage.redis.client import make_redis_client

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = RedisExchangeStore(make_redis_client(f"redis://127.0.0.1:{port}/0", timeout=0.5))
    try:
        assert await store.get("t-refused") is None
        assert store.redis_errors == 1
        assert not store.worth_waiting
    finally:
        await store.close()


class CountingLookups(RedisExchangeStore):
    """The real store, counting its lookups."""

    lookups = 0

    async def get(self, trace_id: str, *, force: bool = False) -> Exchange | None:
        self.lookups += 1
        return await super().get(trace_id, force=force)


async def test_a_missing_exchange_is_awaited_with_few_lookups(
    redis_url: str, redis_prefix: str
) -> None:
    from feedback_asgi.storage.redis.client import make_redis_client

    exchanges = CountingLookups(make_redis_client(redis_url), prefix=redis_prefix)
    kit = FeedbackKit(
        FeedbackConfig(database_url="memory://", redis_url=redis_url,
                       redis_key_prefix=redis_prefix,
                       secret_key="settle-tests-secret-key-0123456789abcdef"),
        exchanges=exchanges)
    seconds, context = await _post_fresh_then_shut_down(kit, "t-never")
    assert "input" not in context
    assert EXCHANGE_SETTLE_SECONDS - 1.0 <= seconds < EXCHANGE_SETTLE_SECONDS + 0.5
    # polls grow apart: many posts waiting at once must not crowd out the writes they await
    assert 3 <= exchanges.lookups <= 10
