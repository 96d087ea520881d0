"""CachedFeedbackStore against the real Redis, over a MemoryFeedbackStore."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from feedback_asgi.core.exceptions import FeedbackValidationError
from feedback_asgi.core.records import FeedbackItem, FeedbackType, utc_now
from feedback_asgi.core.result import Err, Ok
from feedback_asgi.storage.memory import MemoryFeedbackStore
from feedback_asgi.storage.redis import CachedFeedbackStore, make_redis_client

pytestmark = pytest.mark.redis


def rating(value: float, **context: object) -> FeedbackItem:
    return FeedbackItem(FeedbackType.RATING, value, context=dict(context))


@pytest.fixture
def backing() -> MemoryFeedbackStore:
    return MemoryFeedbackStore()


@pytest.fixture
async def cache(
    backing: MemoryFeedbackStore, redis_url: str, redis_prefix: str
) -> AsyncIterator[CachedFeedbackStore]:
    store = CachedFeedbackStore(backing, make_redis_client(redis_url), prefix=redis_prefix)
    yield store
    await store.close()


def ids(items: list[FeedbackItem]) -> list[str]:
    return [item.id for item in items]


async def test_second_read_is_served_from_redis(
    cache: CachedFeedbackStore, backing: MemoryFeedbackStore
) -> None:
    first = rating(4, session_id="s1")
    assert isinstance(await cache.save(first), Ok)
    assert ids(await cache.find_by_session("s1")) == [first.id]
    assert (cache.hits, cache.misses) == (0, 1)
    # A row written behind the cache's back stays invisible while the entry lives:
    # proof that the second read came from Redis, not from the backing store.
    await backing.save(rating(5, session_id="s1"))
    assert ids(await cache.find_by_session("s1")) == [first.id]
    assert (cache.hits, cache.misses) == (1, 1)
    assert cache.redis_errors == 0


async def test_save_invalidates_session_trace_and_type(
    cache: CachedFeedbackStore, backing: MemoryFeedbackStore
) -> None:
    old = rating(3, session_id="s1", trace_id="t1")
    await cache.save(old)
    for read in (
        lambda: cache.find_by_session("s1"),
        lambda: cache.find_by_trace("t1"),
        lambda: cache.find_by_type(FeedbackType.RATING),
    ):
        assert ids(await read()) == [old.id]
    new = rating(5, session_id="s1", trace_id="t1")
    assert isinstance(await cache.save(new), Ok)
    assert ids(await cache.find_by_session("s1")) == [new.id, old.id]
    assert ids(await cache.find_by_trace("t1")) == [new.id, old.id]
    assert ids(await cache.find_by_type("rating")) == [new.id, old.id]


async def test_save_leaves_unrelated_lists_cached(
    cache: CachedFeedbackStore, backing: MemoryFeedbackStore
) -> None:
    a = FeedbackItem(FeedbackType.THUMBS, 1, context={"session_id": "a"})
    b = FeedbackItem(FeedbackType.TEXT, "hi", context={"session_id": "b"})
    await cache.save_many([a, b])
    assert ids(await cache.find_by_session("b")) == [b.id]
    assert ids(await cache.find_by_type("text")) == [b.id]
    hidden = FeedbackItem(FeedbackType.TEXT, "behind", context={"session_id": "b"})
    await backing.save(hidden)  # not through the cache: nothing invalidated
    await cache.save(FeedbackItem(FeedbackType.THUMBS, -1, context={"session_id": "a"}))
    # The save touched session "a" and kind "thumbs" only; "b" and "text" stay cached.
    assert ids(await cache.find_by_session("b")) == [b.id]
    assert ids(await cache.find_by_type("text")) == [b.id]
    assert len(await cache.find_by_session("a")) == 2


async def test_save_many_invalidates_every_affected_list(cache: CachedFeedbackStore) -> None:
    assert await cache.find_by_session("x") == []
    assert await cache.find_by_session("y") == []
    items = [rating(1, session_id="x"), rating(2, session_id="y")]
    assert isinstance(await cache.save_many(items), Ok)
    assert ids(await cache.find_by_session("x")) == [items[0].id]
    assert ids(await cache.find_by_session("y")) == [items[1].id]


async def test_supersede_invalidates_the_old_versions_lists(cache: CachedFeedbackStore) -> None:
    old = rating(2, session_id="old-session", trace_id="t")
    await cache.save(old)
    assert ids(await cache.find_by_session("old-session")) == [old.id]
    # The new version lives in another session: the old session's list must drop ``old``.
    edit = FeedbackItem(
        FeedbackType.RATING, 4, context={"session_id": "new-session"}, supersedes=old.id
    )
    assert isinstance(await cache.save(edit), Ok)
    assert await cache.find_by_session("old-session") == []
    assert ids(await cache.find_by_session("old-session", include_history=True)) == [old.id]
    assert await cache.find_by_trace("t") == []
    tomb = FeedbackItem(FeedbackType.RATING, None, context={}, supersedes=edit.id, tombstone=True)
    assert ids(await cache.find_by_session("new-session")) == [edit.id]
    assert isinstance(await cache.save(tomb), Ok)
    assert await cache.find_by_session("new-session") == []
    assert ids(await cache.history(old.id)) == [old.id, edit.id, tomb.id]


async def test_history_and_live_variants_are_cached_apart(cache: CachedFeedbackStore) -> None:
    old = rating(1, session_id="s")
    await cache.save(old)
    new = FeedbackItem(FeedbackType.RATING, 2, context={"session_id": "s"}, supersedes=old.id)
    await cache.save(new)
    for _ in range(2):
        assert ids(await cache.find_by_session("s")) == [new.id]
        assert set(ids(await cache.find_by_session("s", include_history=True))) == {
            old.id,
            new.id,
        }
    assert cache.hits == 2


async def test_find_by_type_is_cached_per_limit(cache: CachedFeedbackStore) -> None:
    base = utc_now()
    items = [
        FeedbackItem(FeedbackType.LABEL, {"label": str(i)}, created_at=base + timedelta(seconds=i))
        for i in range(5)
    ]
    await cache.save_many(items)
    newest = [item.id for item in reversed(items)]
    for _ in range(2):
        assert ids(await cache.find_by_type(FeedbackType.LABEL, limit=2)) == newest[:2]
        assert ids(await cache.find_by_type("label", limit=10)) == newest
    assert (cache.hits, cache.misses) == (2, 2)


async def test_rejected_save_keeps_the_cache(cache: CachedFeedbackStore) -> None:
    item = rating(3, session_id="s")
    await cache.save(item)
    await cache.find_by_session("s")
    bad = FeedbackItem(FeedbackType.RATING, 1, context={"session_id": "s"}, supersedes="nope")
    result = await cache.save(bad)
    assert isinstance(result, Err)
    assert isinstance(result.error, FeedbackValidationError)
    assert ids(await cache.find_by_session("s")) == [item.id]
    assert cache.hits == 1


async def test_entries_expire_after_ttl(
    backing: MemoryFeedbackStore, redis_url: str, redis_prefix: str
) -> None:
    cache = CachedFeedbackStore(backing, make_redis_client(redis_url), prefix=redis_prefix, ttl=0.3)
    try:
        assert await cache.find_by_session("s") == []
        hidden = rating(5, session_id="s")
        await backing.save(hidden)
        assert await cache.find_by_session("s") == []  # cached empty list
        await asyncio.sleep(0.45)
        assert ids(await cache.find_by_session("s")) == [hidden.id]
    finally:
        await cache.close()


async def test_keys_live_under_the_prefix_and_unicode_ids_work(
    cache: CachedFeedbackStore, redis_prefix: str
) -> None:
    session = "séance-☃-" + "x" * 300  # long: hashed into the key
    item = FeedbackItem(FeedbackType.TEXT, "日本語 ✓", context={"session_id": session})
    await cache.save(item)
    for _ in range(2):
        (found,) = await cache.find_by_session(session)
        assert found == item
    assert cache.hits == 1
    keys = [k async for k in cache.redis.scan_iter(match="*")]
    ours = [k.decode() for k in keys if k.decode().startswith(redis_prefix)]
    assert any(":cache:e:session:" in k for k in ours)
    assert all(len(k) < 256 for k in ours)


async def test_cached_items_round_trip_exactly(cache: CachedFeedbackStore) -> None:
    item = FeedbackItem(
        FeedbackType.CORRECTION,
        {"original": "a", "corrected": "b", "nested": [1, 2.5, None, True]},
        context={"session_id": "s", "model": "m"},
        metadata={"comment": "ok"},
    )
    await cache.save(item)
    assert await cache.find_by_session("s") == [item]
    (cached,) = await cache.find_by_session("s")
    assert cache.hits == 1
    assert cached.to_dict() == item.to_dict()


async def test_uncached_reads_delegate(
    cache: CachedFeedbackStore, backing: MemoryFeedbackStore
) -> None:
    item = FeedbackItem(FeedbackType.THUMBS, 1, context={"model": "m", "session_id": "s"})
    await cache.save(item)
    hidden = FeedbackItem(FeedbackType.THUMBS, -1, context={"model": "m"})
    await backing.save(hidden)
    assert await cache.get(hidden.id) == hidden
    page = await cache.query(model="m")
    assert {i.id for i in page.items} == {item.id, hidden.id}
    summary = await cache.aggregate()
    assert (summary.thumbs_up, summary.thumbs_down) == (1, 1)
    assert {i.id async for i in cache.iter_items()} == {item.id, hidden.id}
    assert await cache.ping() >= 0
    assert await cache.ping_redis() >= 0
    assert cache.hits == 0


async def test_unreadable_entry_is_read_through(
    cache: CachedFeedbackStore, redis_prefix: str
) -> None:
    cache.local_entries = 0  # no decoded copy in this process: the entry is read again
    item = rating(1, session_id="s")
    await cache.save(item)
    await cache.find_by_session("s")
    keys = [k async for k in cache.redis.scan_iter(match=f"{redis_prefix}cache:e:*")]
    assert len(keys) == 1
    stamp = (await cache.redis.get(keys[0])).split(b"\n", 1)[0]
    await cache.redis.set(keys[0], stamp + b"\nnot json")
    assert ids(await cache.find_by_session("s")) == [item.id]
    assert cache.hits == 0
    assert cache.misses == 2


async def test_two_workers_share_entries_and_invalidations(
    backing: MemoryFeedbackStore, redis_url: str, redis_prefix: str
) -> None:
    """Two cache instances (two worker processes) over one database and one Redis."""
    one = CachedFeedbackStore(backing, make_redis_client(redis_url), prefix=redis_prefix)
    two = CachedFeedbackStore(backing, make_redis_client(redis_url), prefix=redis_prefix)
    try:
        first = rating(1, session_id="s")
        await one.save(first)
        await two.find_by_session("s")  # two's first contact, then a miss that fills
        assert ids(await one.find_by_session("s")) == [first.id]  # filled by two
        assert ids(await one.find_by_session("s")) == [first.id]  # from one's decoded copy
        assert one.hits == 2
        second = rating(2, session_id="s")
        await two.save(second)  # invalidates in Redis; one's decoded copy is now outdated
        assert set(ids(await one.find_by_session("s"))) == {first.id, second.id}
    finally:
        await one.close()
        await two.close()
