"""The conformance suite every ``FeedbackStoreProtocol`` implementation must pass.

Run it on your own store by subclassing :class:`StoreConformanceSuite` in a test module
and providing a ``store`` fixture that yields a fresh, empty store (pytest-asyncio needed)::

    import pytest
    from feedback_asgi.testing.conformance import StoreConformanceSuite

    class TestMyStore(StoreConformanceSuite):
        @pytest.fixture
        async def store(self):
            store = MyStore(...)
            yield store
            await store.close()

(With pytest-asyncio in strict mode, decorate the fixture with ``@pytest_asyncio.fixture``.)
The tests use only the protocol's methods and check the semantics documented in
:mod:`feedback_asgi.storage.base`: append-only versions, one successor per item,
tombstones, live-only reads, newest-first order by ``(created_at, id)``, ``[since, until)``
windows, keyset pagination, ``save_many`` atomicity, aggregates, ``iter_items`` order, and
that a read after a save always sees the save (no stale cache).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from feedback_asgi.core.exceptions import FeedbackValidationError
from feedback_asgi.core.records import FeedbackItem, FeedbackType, utc_now
from feedback_asgi.core.result import Err, Ok
from feedback_asgi.storage.base import FeedbackStoreProtocol

__all__ = ["StoreConformanceSuite"]

CONCURRENT_SAVES = 1_000


def _tag() -> str:
    return uuid.uuid4().hex[:10]


def _at(minutes_ago: float, base: datetime | None = None) -> datetime:
    return (base or utc_now()) - timedelta(minutes=minutes_ago)


async def _save(store: FeedbackStoreProtocol, item: FeedbackItem) -> FeedbackItem:
    result = await store.save(item)
    assert result == Ok(item.id), result
    return item


async def _save_all(store: FeedbackStoreProtocol, items: Sequence[FeedbackItem]) -> None:
    result = await store.save_many(items)
    assert result == Ok([item.id for item in items]), result


def _ids(items: Sequence[FeedbackItem]) -> list[str]:
    return [item.id for item in items]


def _newest_first(items: Sequence[FeedbackItem]) -> list[str]:
    return _ids(sorted(items, key=lambda item: (item.created_at, item.id), reverse=True))


async def _all_rows(store: FeedbackStoreProtocol, **kwargs: Any) -> list[FeedbackItem]:
    return [item async for item in store.iter_items(**kwargs)]


def _rejected(result: object, field: str) -> None:
    assert isinstance(result, Err), result
    assert isinstance(result.error, FeedbackValidationError), result.error
    assert field in result.error.fields, result.error.fields


@pytest.mark.asyncio
class StoreConformanceSuite:
    """Tests for any store; subclasses provide a ``store`` fixture yielding an empty store."""

    # round trip

    async def test_save_then_get_round_trips_every_field(self, store: FeedbackStoreProtocol) -> None:
        created = datetime(2025, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
        item = FeedbackItem(
            FeedbackType.CORRECTION,
            {"original": "a", "corrected": "b", "nested": [1, 2.5, None, True]},
            context={"trace_id": "t-" + _tag(), "session_id": "s", "model": "m", "input": "q"},
            metadata={"comment": "fine", "source": "test"},
            created_at=created,
        )
        await _save(store, item)
        got = await store.get(item.id)
        assert got == item
        assert got is not None
        assert got.created_at == created
        assert got.created_at.utcoffset() == timedelta(0)
        assert got.feedback_type is FeedbackType.CORRECTION

    async def test_get_unknown_id_is_none(self, store: FeedbackStoreProtocol) -> None:
        await _save(store, FeedbackItem("text", "x"))
        assert await store.get("no-such-" + _tag()) is None

    async def test_duplicate_id_is_rejected_and_first_row_kept(
        self, store: FeedbackStoreProtocol
    ) -> None:
        item = await _save(store, FeedbackItem("rating", 3))
        _rejected(await store.save(item.evolve(value=5)), "id")
        got = await store.get(item.id)
        assert got is not None
        assert got.value == 3

    async def test_custom_kind(self, store: FeedbackStoreProtocol) -> None:
        session = "s-" + _tag()
        item = await _save(
            store, FeedbackItem("preference", {"chosen": "a", "rejected": "b"},
                                context={"session_id": session})
        )
        assert _ids(await store.find_by_type("preference")) == [item.id]
        assert _ids(await store.find_by_session(session)) == [item.id]
        summary = await store.aggregate(window_hours=1)
        assert summary.count_by_type == {"preference": 1}
        got = await store.get(item.id)
        assert got is not None
        assert got.feedback_type == "preference"

    async def test_unicode_round_trip_and_lookup(self, store: FeedbackStoreProtocol) -> None:
        session = "séance-会话-" + _tag() + "-🙂"
        text = "Ça marche 👍 — 日本語 — العربية — \u200dzero-width"
        item = await _save(
            store,
            FeedbackItem("text", text, context={"session_id": session, "model": "modèle-✓"},
                         metadata={"comment": "ünïcødé ✔", "emoji": "🧪"}),
        )
        found = await store.find_by_session(session)
        assert found == [item]
        page = await store.query(model="modèle-✓")
        assert _ids(page.items) == [item.id]

    async def test_one_megabyte_json_value(self, store: FeedbackStoreProtocol) -> None:
        blob = {"chunks": ["é" + "x" * 1023 for _ in range(1024)], "n": 1024}
        assert len(json.dumps(blob)) > 1_000_000
        item = await _save(store, FeedbackItem("label", blob, metadata={"size": "1MB"}))
        got = await store.get(item.id)
        assert got is not None
        assert got.value == blob

    # ordering, limits, filters

    async def test_newest_first_with_ties_broken_by_id(self, store: FeedbackStoreProtocol) -> None:
        session = "s-" + _tag()
        moment = _at(30)
        items = [
            FeedbackItem("thumbs", 1, context={"session_id": session}, created_at=moment)
            for _ in range(5)
        ] + [
            FeedbackItem("thumbs", -1, context={"session_id": session}, created_at=_at(m))
            for m in (10, 50, 20)
        ]
        for item in items:
            await _save(store, item)
        assert _ids(await store.find_by_session(session)) == _newest_first(items)
        page = await store.query(session_id=session, limit=100)
        assert _ids(page.items) == _newest_first(items)
        assert page.next_cursor is None

    async def test_ties_order_ids_by_code_point(self, store: FeedbackStoreProtocol) -> None:
        moment, tag = _at(5), _tag()
        ids = [f"{tag}-{suffix}" for suffix in ("B", "_", "a", "Z9", "z", "0", "é")]
        items = [FeedbackItem("text", "t", id=i, context={"trace_id": tag}, created_at=moment)
                 for i in ids]
        await _save_all(store, items)
        assert _ids(await store.find_by_trace(tag)) == sorted(ids, reverse=True)
        page = await store.query(trace_id=tag, limit=3)
        second = await store.query(trace_id=tag, limit=10, cursor=page.next_cursor)
        assert _ids(page.items) + _ids(second.items) == sorted(ids, reverse=True)

    async def test_find_by_type_limit_and_order(self, store: FeedbackStoreProtocol) -> None:
        ratings = [FeedbackItem("rating", 1 + i % 5, created_at=_at(i)) for i in range(12)]
        texts = [FeedbackItem("text", "t", created_at=_at(i + 0.5)) for i in range(3)]
        await _save_all(store, [*ratings, *texts])
        assert _ids(await store.find_by_type(FeedbackType.RATING, limit=5)) == _newest_first(ratings)[:5]
        assert _ids(await store.find_by_type("rating")) == _newest_first(ratings)
        assert _ids(await store.find_by_type("text", limit=100)) == _newest_first(texts)
        assert await store.find_by_type("thumbs") == []

    async def test_find_by_session_and_trace_filter(self, store: FeedbackStoreProtocol) -> None:
        s1, s2, trace = "s1-" + _tag(), "s2-" + _tag(), "t-" + _tag()
        a = FeedbackItem("thumbs", 1, context={"session_id": s1, "trace_id": trace}, created_at=_at(3))
        b = FeedbackItem("text", "x", context={"session_id": s1}, created_at=_at(2))
        c = FeedbackItem("rating", 2, context={"session_id": s2, "trace_id": trace}, created_at=_at(1))
        await _save_all(store, [a, b, c])
        assert _ids(await store.find_by_session(s1)) == [b.id, a.id]
        assert _ids(await store.find_by_session(s2)) == [c.id]
        assert _ids(await store.find_by_trace(trace)) == [c.id, a.id]
        assert await store.find_by_session("nobody-" + _tag()) == []

    async def test_query_filters_combine(self, store: FeedbackStoreProtocol) -> None:
        user = "u-" + _tag()
        items = [
            FeedbackItem(kind, 1, context={"model": model, "user_id": user if i % 2 else "other"},
                         created_at=_at(i))
            for i, (kind, model) in enumerate(
                [("thumbs", "m1"), ("thumbs", "m2"), ("rating", "m1"), ("thumbs", "m1"),
                 ("rating", "m2"), ("thumbs", "m1")]
            )
        ]
        await _save_all(store, items)

        def expected(**want: str) -> list[str]:
            chosen = [
                item for item in items
                if ("type" not in want or item.feedback_type == want["type"])
                and all(item.context.get(k) == v for k, v in want.items() if k != "type")
            ]
            return _newest_first(chosen)

        assert _ids((await store.query(type="thumbs", model="m1")).items) == expected(type="thumbs", model="m1")
        assert _ids((await store.query(user_id=user)).items) == expected(user_id=user)
        assert _ids((await store.query(model="m2", user_id=user)).items) == expected(model="m2", user_id=user)
        assert _ids((await store.query(type=FeedbackType.RATING)).items) == expected(type="rating")
        assert (await store.query(model="m3")).items == []

    async def test_query_by_the_clients_and_the_tracing_systems_ids(
        self, store: FeedbackStoreProtocol
    ) -> None:
        trace = "0af7651916cd43dd8448eb211c80319c"
        items = [
            FeedbackItem("thumbs", 1, context={"trace_id": _tag(), "request_id": "req-" + str(i % 2),
                                               "otel_trace_id": trace if i < 3 else None},
                         created_at=_at(i))
            for i in range(5)
        ]
        await _save_all(store, items)
        by_request = await store.query(request_id="req-1")
        assert _ids(by_request.items) == _newest_first([items[1], items[3]])
        by_trace = await store.query(otel_trace_id=trace)
        assert _ids(by_trace.items) == _newest_first(items[:3])
        both = await store.query(request_id="req-0", otel_trace_id=trace)
        assert _ids(both.items) == _newest_first([items[0], items[2]])
        assert (await store.query(request_id="req-2")).items == []

    # windows and time zones

    async def test_window_includes_start_and_excludes_end(self, store: FeedbackStoreProtocol) -> None:
        since = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
        until = since + timedelta(hours=1)
        tiny = timedelta(microseconds=1)
        on_start = FeedbackItem("thumbs", 1, created_at=since)
        inside = FeedbackItem("thumbs", 1, created_at=until - tiny)
        on_end = FeedbackItem("thumbs", -1, created_at=until)
        before = FeedbackItem("thumbs", -1, created_at=since - tiny)
        await _save_all(store, [on_start, inside, on_end, before])
        page = await store.query(since=since, until=until)
        assert _ids(page.items) == [inside.id, on_start.id]
        rows = await _all_rows(store, since=since, until=until)
        assert _ids(rows) == [on_start.id, inside.id]
        summary = await store.aggregate(since=since, until=until)
        assert summary.total_count == 2
        assert summary.thumbs_up == 2
        assert summary.thumbs_down == 0

    async def test_items_created_in_other_time_zones(self, store: FeedbackStoreProtocol) -> None:
        base = datetime(2025, 1, 10, 12, 0, 0, tzinfo=UTC)
        kolkata = timezone(timedelta(hours=5, minutes=30))
        pacific = timezone(timedelta(hours=-8))
        # 17:29 in Kolkata is 11:59 UTC; 04:01 in the Pacific is 12:01 UTC.
        early = FeedbackItem("rating", 2, created_at=datetime(2025, 1, 10, 17, 29, tzinfo=kolkata))
        late = FeedbackItem("rating", 4, created_at=datetime(2025, 1, 10, 4, 1, tzinfo=pacific))
        middle = FeedbackItem("rating", 3, created_at=base)
        await _save_all(store, [late, early, middle])
        page = await store.query(type="rating")
        assert _ids(page.items) == [late.id, middle.id, early.id]
        got = await store.get(early.id)
        assert got is not None
        assert got.created_at == datetime(2025, 1, 10, 11, 59, tzinfo=UTC)
        assert got.created_at.utcoffset() == timedelta(0)
        # a window given in another zone means the same instants
        window = await store.query(since=datetime(2025, 1, 10, 13, 0, tzinfo=timezone(timedelta(hours=1))),
                                   until=datetime(2025, 1, 10, 4, 1, tzinfo=pacific))
        assert _ids(window.items) == [middle.id]

    # supersede and retract

    async def test_successor_replaces_version_in_reads(self, store: FeedbackStoreProtocol) -> None:
        session = "s-" + _tag()
        first = await _save(store, FeedbackItem("rating", 2, context={"session_id": session}, created_at=_at(5)))
        second = await _save(store, FeedbackItem("rating", 5, context={"session_id": session},
                                                 supersedes=first.id, created_at=_at(1)))
        assert _ids(await store.find_by_session(session)) == [second.id]
        assert _ids(await store.find_by_session(session, include_history=True)) == [second.id, first.id]
        assert _ids(await store.find_by_type("rating")) == [second.id]
        assert _ids((await store.query(session_id=session)).items) == [second.id]
        assert _ids((await store.query(session_id=session, include_history=True)).items) == [second.id, first.id]
        assert await store.get(first.id) == first
        summary = await store.aggregate(window_hours=1)
        assert summary.total_count == 1
        assert summary.average_rating == pytest.approx(5.0)
        assert _ids(await _all_rows(store)) == [second.id]
        assert _ids(await _all_rows(store, include_history=True)) == [first.id, second.id]

    async def test_second_successor_is_rejected(self, store: FeedbackStoreProtocol) -> None:
        first = await _save(store, FeedbackItem("thumbs", 1))
        await _save(store, FeedbackItem("thumbs", -1, supersedes=first.id))
        rival = FeedbackItem("thumbs", 1, supersedes=first.id)
        _rejected(await store.save(rival), "supersedes")
        assert await store.get(rival.id) is None
        assert len(await store.history(first.id)) == 2

    async def test_unknown_target_is_rejected(self, store: FeedbackStoreProtocol) -> None:
        orphan = FeedbackItem("thumbs", 1, supersedes="missing-" + _tag())
        _rejected(await store.save(orphan), "supersedes")
        assert await store.get(orphan.id) is None

    async def test_tombstone_retracts(self, store: FeedbackStoreProtocol) -> None:
        session = "s-" + _tag()
        item = await _save(store, FeedbackItem("thumbs", -1, context={"session_id": session}))
        keep = await _save(store, FeedbackItem("thumbs", 1, context={"session_id": session}))
        gone = await _save(store, FeedbackItem("thumbs", -1, context={"session_id": session},
                                               supersedes=item.id, tombstone=True))
        assert _ids(await store.find_by_session(session)) == [keep.id]
        assert set(_ids(await store.find_by_session(session, include_history=True))) == {
            item.id, keep.id, gone.id}
        summary = await store.aggregate(window_hours=1)
        assert (summary.total_count, summary.thumbs_up, summary.thumbs_down) == (1, 1, 0)
        _rejected(await store.save(FeedbackItem("thumbs", 1, supersedes=item.id)), "supersedes")

    async def test_history_is_the_whole_chain_oldest_first(self, store: FeedbackStoreProtocol) -> None:
        v1 = await _save(store, FeedbackItem("text", "v1", created_at=_at(4)))
        v2 = await _save(store, FeedbackItem("text", "v2", supersedes=v1.id, created_at=_at(3)))
        v3 = await _save(store, FeedbackItem("text", "v3", supersedes=v2.id, created_at=_at(2)))
        end = await _save(store, FeedbackItem("text", "v3", supersedes=v3.id, tombstone=True,
                                              created_at=_at(1)))
        other = await _save(store, FeedbackItem("text", "other"))
        chain = [v1.id, v2.id, v3.id, end.id]
        for member in chain:
            assert _ids(await store.history(member)) == chain
        assert _ids(await store.history(other.id)) == [other.id]
        assert await store.history("missing-" + _tag()) == []
        assert _ids(await store.find_by_type("text")) == [other.id]

    # pagination

    async def test_pagination_is_stable_while_inserting(self, store: FeedbackStoreProtocol) -> None:
        session = "s-" + _tag()
        tied = _at(60)
        originals = [
            FeedbackItem("thumbs", 1, context={"session_id": session},
                         created_at=tied if i % 4 == 0 else _at(30 + i))
            for i in range(23)
        ]
        await _save_all(store, originals)
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            page = await store.query(session_id=session, limit=5, cursor=cursor)
            seen.extend(_ids(page.items))
            pages += 1
            # newer rows land before the cursor position and must not shift later pages
            await _save(store, FeedbackItem("thumbs", -1, context={"session_id": session}))
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
            assert pages < 20
        assert seen == _newest_first(originals)
        assert pages == 5

    async def test_bad_cursor_is_a_validation_error(self, store: FeedbackStoreProtocol) -> None:
        with pytest.raises(FeedbackValidationError):
            await store.query(cursor="not-a-cursor")

    # concurrency and batches

    async def test_concurrent_saves_store_each_exactly_once(self, store: FeedbackStoreProtocol) -> None:
        items = [FeedbackItem("thumbs", 1 if i % 3 else -1, context={"session_id": f"c{i % 7}"})
                 for i in range(CONCURRENT_SAVES)]
        results = await asyncio.gather(*(store.save(item) for item in items))
        assert results == [Ok(item.id) for item in items]
        rows = await _all_rows(store, batch_size=250)
        assert len(rows) == CONCURRENT_SAVES
        assert sorted(_ids(rows)) == sorted(_ids(items))

    async def test_concurrent_failures_fail_only_their_callers(
        self, store: FeedbackStoreProtocol
    ) -> None:
        existing = await _save(store, FeedbackItem("rating", 1))
        target = await _save(store, FeedbackItem("rating", 2))
        good = [FeedbackItem("rating", 4) for _ in range(40)]
        duplicate = existing.evolve(value=5)
        orphan = FeedbackItem("rating", 5, supersedes="missing-" + _tag())
        successor = FeedbackItem("rating", 3, supersedes=target.id)
        mixed: list[FeedbackItem] = [*good[:20], duplicate, orphan, successor, *good[20:]]
        results = await asyncio.gather(*(store.save(item) for item in mixed))
        by_id = dict(zip([id(item) for item in mixed], results, strict=True))
        assert all(by_id[id(item)] == Ok(item.id) for item in good)
        _rejected(by_id[id(duplicate)], "id")
        _rejected(by_id[id(orphan)], "supersedes")
        assert by_id[id(successor)] == Ok(successor.id)
        rows = await _all_rows(store)
        assert sorted(_ids(rows)) == sorted([existing.id, successor.id, *_ids(good)])

    async def test_concurrent_successors_of_one_item_only_one_wins(
        self, store: FeedbackStoreProtocol
    ) -> None:
        target = await _save(store, FeedbackItem("thumbs", 1))
        rivals = [FeedbackItem("thumbs", -1, supersedes=target.id) for _ in range(10)]
        results = await asyncio.gather(*(store.save(item) for item in rivals))
        assert sum(isinstance(result, Ok) for result in results) == 1
        for result in results:
            if isinstance(result, Err):
                _rejected(result, "supersedes")
        assert len(await store.history(target.id)) == 2

    async def test_save_many_is_all_or_nothing(self, store: FeedbackStoreProtocol) -> None:
        existing = await _save(store, FeedbackItem("text", "old"))
        fine = [FeedbackItem("text", f"n{i}") for i in range(5)]
        _rejected(await store.save_many([*fine, FeedbackItem("text", "x", supersedes="nope-" + _tag())]),
                  "supersedes")
        _rejected(await store.save_many([*fine, existing]), "id")
        _rejected(await store.save_many([fine[0], fine[0]]), "id")
        for item in fine:
            assert await store.get(item.id) is None
        assert _ids(await _all_rows(store)) == [existing.id]

    async def test_save_many_chain_in_one_call(self, store: FeedbackStoreProtocol) -> None:
        first = FeedbackItem("rating", 1, created_at=_at(2))
        second = FeedbackItem("rating", 2, supersedes=first.id, created_at=_at(1))
        third = FeedbackItem("rating", 3, supersedes=second.id)
        await _save_all(store, [first, second, third])
        assert _ids(await store.find_by_type("rating")) == [third.id]
        assert _ids(await store.history(first.id)) == [first.id, second.id, third.id]
        _rejected(await store.save_many([FeedbackItem("rating", 4, supersedes=first.id)]), "supersedes")
        assert await store.save_many([]) == Ok([])

    # aggregates

    async def test_aggregate_figures(self, store: FeedbackStoreProtocol) -> None:
        now = utc_now()
        recent: list[FeedbackItem] = [
            FeedbackItem("rating", 5, context={"model": "a", "provider": "p"}, created_at=_at(10, now)),
            FeedbackItem("rating", 2, context={"model": "a", "provider": "q"}, created_at=_at(20, now)),
            FeedbackItem("rating", 3.5, context={"model": "b", "provider": "p"}, created_at=_at(30, now)),
            FeedbackItem("thumbs", 1, context={"model": "a", "provider": "p"}, created_at=_at(40, now)),
            FeedbackItem("thumbs", 1, context={"model": "b", "provider": "p"}, created_at=_at(50, now)),
            FeedbackItem("thumbs", -1, context={"model": "a", "provider": "q"}, created_at=_at(60, now)),
            FeedbackItem("thumbs", None, context={"model": "a"}, created_at=_at(70, now)),
            FeedbackItem("text", "hello", context={"model": "a"}, created_at=_at(80, now)),
        ]
        old = FeedbackItem("rating", 1, context={"model": "a"}, created_at=now - timedelta(hours=30))
        await _save_all(store, [*recent, old])
        summary = await store.aggregate(window_hours=24)
        assert summary.total_count == 8
        assert summary.count_by_type == {"rating": 3, "thumbs": 4, "text": 1}
        assert summary.average_rating == pytest.approx((5 + 2 + 3.5) / 3)
        assert (summary.thumbs_up, summary.thumbs_down) == (2, 1)
        assert summary.thumbs_up_rate == pytest.approx(2 / 3)
        by_model = await store.aggregate(window_hours=24, model="a")
        assert by_model.count_by_type == {"rating": 2, "thumbs": 3, "text": 1}
        assert by_model.average_rating == pytest.approx(3.5)
        by_both = await store.aggregate(window_hours=24, model="a", provider="p")
        assert by_both.count_by_type == {"rating": 1, "thumbs": 1}
        wide = await store.aggregate(window_hours=48)
        assert wide.total_count == 9
        assert wide.average_rating == pytest.approx((5 + 2 + 3.5 + 1) / 4)
        empty = await store.aggregate(window_hours=24, model="nobody")
        assert (empty.total_count, empty.average_rating, empty.count_by_type) == (0, None, {})
        assert empty.thumbs_up_rate is None

    # export

    async def test_iter_items_oldest_first_across_batches(self, store: FeedbackStoreProtocol) -> None:
        tied = _at(100)
        items = [FeedbackItem("thumbs", 1, created_at=tied if i % 3 == 0 else _at(i)) for i in range(17)]
        await _save_all(store, items)
        oldest_first = list(reversed(_newest_first(items)))
        for batch_size in (1, 4, 1000):
            assert _ids(await _all_rows(store, batch_size=batch_size)) == oldest_first
        since = _at(10)
        assert _ids(await _all_rows(store, since=since, batch_size=3)) == [
            i for i in oldest_first if next(x for x in items if x.id == i).created_at >= since
        ]

    # reads after writes (no stale cache)

    async def test_reads_after_a_save_see_it(self, store: FeedbackStoreProtocol) -> None:
        session, trace = "s-" + _tag(), "t-" + _tag()
        context = {"session_id": session, "trace_id": trace, "model": "m-" + _tag()}
        first = await _save(store, FeedbackItem("rating", 2, context=context, created_at=_at(2)))
        assert _ids(await store.find_by_session(session)) == [first.id]
        assert _ids(await store.find_by_trace(trace)) == [first.id]
        assert _ids(await store.find_by_type("rating", limit=10)) == [first.id]
        assert _ids((await store.query(model=context["model"])).items) == [first.id]
        second = await _save(store, FeedbackItem("rating", 4, context=context, created_at=_at(1)))
        assert _ids(await store.find_by_session(session)) == [second.id, first.id]
        assert _ids(await store.find_by_trace(trace)) == [second.id, first.id]
        assert _ids(await store.find_by_type("rating", limit=10)) == [second.id, first.id]
        assert _ids((await store.query(model=context["model"])).items) == [second.id, first.id]
        edit = await _save(store, FeedbackItem("rating", 5, context=context, supersedes=first.id))
        assert _ids(await store.find_by_session(session)) == [edit.id, second.id]
        assert _ids(await store.find_by_type("rating", limit=10)) == [edit.id, second.id]
        await _save(store, FeedbackItem("rating", 5, context=context, supersedes=edit.id, tombstone=True))
        assert _ids(await store.find_by_session(session)) == [second.id]
        assert _ids(await store.find_by_trace(trace)) == [second.id]
        await _save_all(store, [third := FeedbackItem("rating", 1, context=context)])
        assert _ids(await store.find_by_session(session)) == [third.id, second.id]

    async def test_ping_reports_milliseconds(self, store: FeedbackStoreProtocol) -> None:
        elapsed = await store.ping()
        assert isinstance(elapsed, float)
        assert elapsed >= 0.0
