"""``since``/``until`` outside 1970-01-01..9999-01-01 UTC: a 422 naming the field on every time
route and backend; the edges of the range, with the window arithmetic, still answer 200."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi import FastAPI

from feedback_asgi.analytics import feedback_stats
from feedback_asgi.core.exceptions import FeedbackValidationError
from feedback_asgi.export import ExportOptions
from feedback_asgi.integrations.fastapi import feedback_router
from feedback_asgi.kit import FeedbackKit
from feedback_asgi.storage.base import EARLIEST_TIME, LATEST_TIME, check_time, window_bounds
from feedback_asgi.web.endpoint import create_feedback_endpoint
from tests import services
from tests.endpoint.apps import client, error_of
from tests.endpoint.test_hostile_params import ADMIN, BACKENDS, _kit

TOO_EARLY = ["0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "1970-01-01T00:00:00+01:00"]
TOO_LATE = ["9999-12-31T00:00:00Z", "9999-12-31T23:00:00-05:00", "9999-01-01T00:00:00-00:01"]
# (method, route, extra query)
TIME_ROUTES = [
    ("GET", "/feedback", ""),
    ("GET", "/feedback/stats", ""),
    ("GET", "/feedback/stats", "&window=7d"),
    ("GET", "/feedback/stats/timeseries", "&interval=hour"),
    ("GET", "/feedback/stats/timeseries", "&interval=day"),
    ("POST", "/feedback/export/finetune", ""),
    ("POST", "/feedback/export/preferences", ""),
]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return services.database_url_for(request, tmp_path)


@pytest.fixture
async def kit(database_url: str) -> AsyncIterator[FeedbackKit]:
    kit = _kit(database_url)
    try:
        yield kit
    finally:
        await kit.shutdown()


def _quoted(moment: str) -> str:
    return moment.replace("+", "%2B")


@pytest.mark.parametrize(("method", "route", "extra"), TIME_ROUTES)
async def test_a_time_out_of_range_is_422_naming_it(kit: FeedbackKit, method: str, route: str,
                                                   extra: str) -> None:
    async with client(create_feedback_endpoint(kit)) as http:
        for name in ("since", "until"):
            for moment in [*TOO_EARLY, *TOO_LATE, "0001-01-02", "9999-12-31"]:
                query = f"?{name}={_quoted(moment)}{extra}"
                answer = await http.request(method, route + query, headers=ADMIN)
                assert answer.status_code == 422, (route, query, answer.text)
                error = error_of(answer)
                assert error["code"] == "validation_error"
                assert set(error["fields"]) == {name}, (route, query, error)


@pytest.mark.parametrize(("method", "route", "extra"), TIME_ROUTES)
async def test_the_edges_of_the_range_answer_200(kit: FeedbackKit, method: str, route: str,
                                                 extra: str) -> None:
    windows = [
        ("1970-01-01T00:00:00Z", "1970-01-02T00:00:00Z"),
        ("9998-12-31T00:00:00Z", "9999-01-01T00:00:00Z"),
        ("1970-01-01T01:00:00%2B01:00", "9999-01-01T00:00:00Z"),
    ]
    async with client(create_feedback_endpoint(kit)) as http:
        for since, until in windows:
            if "timeseries" in route and since.startswith("1970-01-01T01"):
                continue  # 8,000 years of buckets: refused for their number, tested elsewhere
            answer = await http.request(method, f"{route}?since={since}&until={until}{extra}",
                                        headers=ADMIN)
            assert answer.status_code == 200, (route, since, until, answer.text)
        if method == "GET" and "stats" in route:
            # the longest window ending at the earliest time reaches back to 1960
            oldest = await http.get(f"{route}?until=1970-01-01T00:00:00Z&window=520w"
                                    f"{'&interval=day' if 'timeseries' in route else ''}",
                                    headers=ADMIN)
            assert oldest.status_code == 200, oldest.text
            assert oldest.json()["since"].startswith("1960-")


async def test_an_export_since_after_now_is_422_not_500(kit: FeedbackKit) -> None:
    async with client(create_feedback_endpoint(kit)) as http:
        answer = await http.post("/feedback/export/finetune?since=9000-01-01", headers=ADMIN)
    assert answer.status_code == 422
    assert set(error_of(answer)["fields"]) == {"since"}


def test_check_time_is_the_one_rule() -> None:
    assert check_time("since", EARLIEST_TIME) == EARLIEST_TIME
    assert check_time("until", LATEST_TIME) == LATEST_TIME
    east = datetime(2026, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))
    assert check_time("since", east) == datetime(2026, 1, 1, tzinfo=UTC)
    assert check_time("since", east).tzinfo is UTC
    for moment in (EARLIEST_TIME - timedelta(microseconds=1),
                   LATEST_TIME + timedelta(microseconds=1),
                   datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))),
                   datetime(1, 1, 1, tzinfo=UTC), datetime(2026, 1, 1)):
        with pytest.raises(FeedbackValidationError) as caught:
            check_time("until", moment)
        assert set(caught.value.fields) == {"until"}


async def test_the_python_api_applies_it_too() -> None:
    kit = FeedbackKit.for_testing()
    with pytest.raises(FeedbackValidationError, match="since"):
        await feedback_stats(kit.store, since=datetime(1, 1, 2, tzinfo=UTC))
    with pytest.raises(FeedbackValidationError, match="until"):
        ExportOptions(until=datetime(9999, 12, 31, tzinfo=UTC))
    with pytest.raises(FeedbackValidationError, match="since"):
        ExportOptions(since=datetime(9999, 1, 1, tzinfo=UTC)).resolved()
    with pytest.raises(FeedbackValidationError, match="window_hours"):
        window_bounds(10**9, None, None)
    with pytest.raises(FeedbackValidationError, match="until"):
        await kit.store.aggregate(until=datetime(1, 1, 1, tzinfo=UTC))


def test_openapi_documents_the_range_and_the_filters() -> None:
    app = FastAPI()
    app.include_router(feedback_router(FeedbackKit.for_testing()), prefix="/feedback")
    paths = app.openapi()["paths"]
    for path, method in (("/feedback/stats", "get"), ("/feedback/stats/timeseries", "get"),
                         ("/feedback", "get"), ("/feedback/export", "post"),
                         ("/feedback/export/{kind}", "post")):
        described = paths[path][method]["responses"]["422"]["description"]
        assert "1970-01-01..9999-01-01 UTC" in described, path
        assert "fields names it" in described
    assert "The body does not fit" in paths["/feedback"]["post"]["responses"]["422"]["description"]
