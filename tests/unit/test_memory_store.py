from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from feedback_asgi.core.exceptions import FeedbackValidationError, StorageUnavailableError
from feedback_asgi.core.records import Exchange, FeedbackItem, FeedbackType, utc_now
from feedback_asgi.core.result import Err, Ok
from feedback_asgi.storage.base import (
    ExchangeStoreProtocol,
    FeedbackStoreProtocol,
    decode_cursor,
    encode_cursor,
)
from feedback_asgi.storage.memory import MemoryExchangeStore, MemoryFeedbackStore


def item(kind: str = "rating", value: object = 3.0, minutes_ago: float = 0, **context: object
         ) -> FeedbackItem:
    return FeedbackItem(
        kind,  # type: ignore[arg-type]
        value,
        context=dict(context),
        created_at=utc_now() - timedelta(minutes=minutes_ago),
    )


def test_the_memory_stores_satisfy_the_protocols() -> None:
    assert isinstance(MemoryFeedbackStore(), FeedbackStoreProtocol)
    assert isinstance(MemoryExchangeStore(), ExchangeStoreProtocol)


async def test_save_get_and_len() -> None:
    store = MemoryFeedbackStore()
    first = item(trace_id="t")
    assert await store.save(first) == Ok(first.id)
    assert await store.get(first.id) is first
    assert await store.get("missing") is None
    assert len(store) == 1


async def test_duplicate_id_is_rejected_on_field_id() -> None:
    store = MemoryFeedbackStore()
    first = item()
    await store.save(first)
    result = await store.save(first.evolve(value=5.0))
    assert isinstance(result, Err)
    assert isinstance(result.error, FeedbackValidationError)
    assert list(result.error.fields) == ["id"]
    assert (await store.get(first.id)) is first


async def test_capacity_is_bounded_and_a_full_store_is_unavailable() -> None:
    store = MemoryFeedbackStore(max_items=2)
    assert (await store.save(item())).is_ok()
    result = await store.save_many([item(), item()])
    assert isinstance(result, Err)
    assert isinstance(result.error, StorageUnavailableError)
    assert len(store) == 1  # all or nothing
    assert (await store.save(item())).is_ok()
    full = await store.save(item())
    assert isinstance(full, Err)
    assert isinstance(full.error, StorageUnavailableError)
    assert "full" in full.error.message
    store.clear()
    assert len(store) == 0
    assert (await store.save(item())).is_ok()


async def test_save_many_checks_every_item_before_storing_any() -> None:
    store = MemoryFeedbackStore()
    good = item()
    result = await store.save_many([good, item().evolve(supersedes="missing")])
    assert isinstance(result, Err)
    assert len(store) == 0
    same_id = item()
    result = await store.save_many([same_id, same_id])
    assert isinstance(result, Err)
    assert len(store) == 0


async def test_supersede_tombstone_and_history() -> None:
    store = MemoryFeedbackStore()
    v1 = item(value=1.0, minutes_ago=3, session_id="s")
    v2 = FeedbackItem(FeedbackType.RATING, 2.0, context={"session_id": "s"}, supersedes=v1.id,
                      created_at=utc_now() - timedelta(minutes=2))
    gone = FeedbackItem(FeedbackType.RATING, None, context={"session_id": "s"},
                        supersedes=v2.id, tombstone=True)
    for version in (v1, v2):
        assert (await store.save(version)).is_ok()
    assert [i.value for i in await store.find_by_session("s")] == [2.0]
    assert (await store.save(gone)).is_ok()
    assert await store.find_by_session("s") == []
    assert [i.id for i in await store.find_by_session("s", include_history=True)] == [
        gone.id, v2.id, v1.id
    ]
    for member in (v1, v2, gone):
        assert [i.id for i in await store.history(member.id)] == [v1.id, v2.id, gone.id]
    assert await store.history("missing") == []
    assert await store.get(v1.id) is v1  # superseded rows stay readable by id
    again = await store.save(FeedbackItem(FeedbackType.RATING, 5.0, supersedes=v1.id))
    assert isinstance(again, Err)
    assert list(again.error.fields) == ["supersedes"]  # type: ignore[attr-defined]


async def test_find_by_type_and_trace_newest_first() -> None:
    store = MemoryFeedbackStore()
    old = item(minutes_ago=5, trace_id="t")
    new = item(minutes_ago=1, trace_id="t")
    text = item("text", "hi", trace_id="other")
    await store.save_many([old, text, new])
    assert [i.id for i in await store.find_by_type("rating")] == [new.id, old.id]
    assert [i.id for i in await store.find_by_type(FeedbackType.RATING, limit=1)] == [new.id]
    assert [i.id for i in await store.find_by_trace("t")] == [new.id, old.id]
    assert [i.id for i in await store.find_by_type("text")] == [text.id]


async def test_query_pagination_walks_every_item_once() -> None:
    store = MemoryFeedbackStore()
    items = [item(minutes_ago=i, model="m" if i % 2 else "n") for i in range(25)]
    await store.save_many(items)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await store.query(limit=10, cursor=cursor)
        seen.extend(i.id for i in page.items)
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 3
    assert seen == [i.id for i in items]  # items were made newest first
    only_m = await store.query(model="m", limit=100)
    assert len(only_m.items) == 12
    assert only_m.next_cursor is None
    assert decode_cursor(encode_cursor(items[3])) == (items[3].created_at, items[3].id)
    with pytest.raises(FeedbackValidationError):
        await store.query(cursor="garbage!")


async def test_aggregate_filters_and_ignores_non_live_items() -> None:
    store = MemoryFeedbackStore()
    a5 = item(value=5.0, model="alpha", provider="x")
    a3 = item(value=3.0, model="alpha", provider="y")
    b1 = item(value=1.0, model="beta", provider="x")
    old = item(value=1.0, model="alpha", minutes_ago=60 * 30)
    up = item("thumbs", 1, model="alpha")
    down = item("thumbs", -1, model="alpha")
    neutral = item("thumbs", None, model="alpha")
    custom = item("preference", "a", model="alpha")
    await store.save_many([a5, a3, b1, old, up, down, neutral, custom])
    replaced = FeedbackItem(FeedbackType.RATING, 4.0, context={"model": "alpha"},
                            supersedes=a3.id)
    await store.save(replaced)

    overall = await store.aggregate()
    assert overall.total_count == 7
    assert overall.average_rating == pytest.approx((5 + 4 + 1) / 3)
    alpha = await store.aggregate(model="alpha")
    assert alpha.count_by_type == {"rating": 2, "thumbs": 3, "preference": 1}
    assert alpha.average_rating == pytest.approx(4.5)
    assert (alpha.thumbs_up, alpha.thumbs_down, alpha.thumbs_up_rate) == (1, 1, 0.5)
    assert (await store.aggregate(provider="x")).average_rating == pytest.approx(3.0)
    wide = await store.aggregate(window_hours=48, model="alpha")
    assert wide.count_by_type["rating"] == 3
    assert (await store.aggregate(until=utc_now() - timedelta(hours=1),
                                  window_hours=48)).total_count == 1


async def test_iter_items_oldest_first_and_window() -> None:
    store = MemoryFeedbackStore()
    items = [item(minutes_ago=m) for m in (30, 20, 10)]
    await store.save_many(items)
    assert [i.id async for i in store.iter_items()] == [i.id for i in items]
    since = utc_now() - timedelta(minutes=25)
    until = utc_now() - timedelta(minutes=15)
    assert [i.id async for i in store.iter_items(since=since, until=until)] == [items[1].id]


async def test_ping_and_close() -> None:
    store = MemoryFeedbackStore()
    assert await store.ping() == 0.0
    await store.close()


# exchanges


async def test_exchange_store_keeps_and_returns_by_trace_id() -> None:
    store = MemoryExchangeStore()
    exchange = Exchange(trace_id="t-1", model="m")
    await store.put(exchange)
    assert await store.get("t-1") is exchange
    assert await store.get("unknown") is None
    assert len(store) == 1


async def test_exchange_store_evicts_least_recently_used_and_counts_drops() -> None:
    store = MemoryExchangeStore(max_items=2)
    for trace in ("a", "b"):
        store.put_nowait(Exchange(trace_id=trace))
    assert await store.get("a") is not None  # "a" is now the most recent
    await store.put(Exchange(trace_id="c"))
    assert await store.get("b") is None
    assert await store.get("a") is not None
    assert await store.get("c") is not None
    assert store.dropped == 1
    for index in range(10):
        store.put_nowait(Exchange(trace_id=f"x{index}"))
    assert len(store) == 2
    assert store.dropped == 11


async def test_exchange_store_expires_entries() -> None:
    store = MemoryExchangeStore(default_ttl=3600)
    await store.put(Exchange(trace_id="gone"), ttl=0)
    await store.put(Exchange(trace_id="kept"))
    assert await store.get("gone") is None
    assert len(store) == 1
    assert await store.get("kept") is not None
    await store.close()


async def test_a_stored_exchange_is_never_overwritten() -> None:
    store = MemoryExchangeStore(default_ttl=60)
    await store.put(Exchange(trace_id="t", output="first"))
    await store.put(Exchange(trace_id="t", output="second"))
    store.put_nowait(Exchange(trace_id="t", output="third"))
    found = await store.get("t")
    assert found is not None
    assert found.output == "first"
    assert len(store) == 1
    assert store.duplicates == 2


async def test_an_expired_exchange_may_be_written_again() -> None:
    store = MemoryExchangeStore()
    await store.put(Exchange(trace_id="t", output="first"), ttl=0.01)
    await asyncio.sleep(0.02)
    await store.put(Exchange(trace_id="t", output="second"))
    found = await store.get("t")
    assert found is not None
    assert found.output == "second"
    assert store.duplicates == 0
