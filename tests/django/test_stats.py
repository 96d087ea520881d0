"""``DjangoFeedbackStore.stats``: the hand-computed figures of the SQL and memory stores."""

from __future__ import annotations

import pytest
from django.db import connections

from feedback_asgi.integrations.django.store import DjangoFeedbackStore
from feedback_asgi.storage.stats import StatsQuery, StatsStoreProtocol
from tests.storage.test_stats import at, figures, save_fixture


async def check(store: DjangoFeedbackStore) -> None:
    await save_fixture(store)
    groups = await store.stats(StatsQuery(at(1), at(9.5), by="model", unique=True))
    assert [(g.key, g.total_count, g.count_by_type, g.average_rating, g.thumbs_up_rate,
             g.unique_users, g.unique_sessions) for g in groups] == [
        ("a", 3, {"rating": 2, "thumbs": 1}, 2.5, 1.0, 2, 2),
        ("b", 4, {"rating": 1, "text": 1, "thumbs": 2}, 3.0, 0.5, 3, 2),
        (None, 1, {"preference": 1}, None, None, 0, 1),
    ]
    (total,) = await store.stats(StatsQuery(at(1), at(9.5)))
    assert figures(total)["total_count"] == 8
    assert total.average_rating == 8 / 3
    hourly = await store.stats(StatsQuery(at(1), at(9.5), interval="hour"))
    assert [(g.bucket, g.total_count) for g in hourly] == [
        (at(1), 1), (at(2), 1), (at(3), 2), (at(5), 1), (at(6), 1), (at(7), 1), (at(9), 1)]
    daily = await store.stats(StatsQuery(at(-2), at(30), by="model", interval="day"))
    assert [(g.bucket, g.key, g.total_count) for g in daily] == [
        (at(-24), "a", 1), (at(0), "a", 4), (at(0), "b", 4), (at(0), None, 1)]


def test_it_computes_stats_itself() -> None:
    assert isinstance(DjangoFeedbackStore(), StatsStoreProtocol)


@pytest.mark.django_db(transaction=True)
async def test_hand_computed_figures_on_sqlite() -> None:
    await check(DjangoFeedbackStore())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases=["default", "postgres"])
async def test_hand_computed_figures_on_postgresql(postgres_alias: str) -> None:
    assert connections[postgres_alias].vendor == "postgresql"
    await check(DjangoFeedbackStore(using=postgres_alias))
