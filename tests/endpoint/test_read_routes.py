"""Read/admin routes on every surface: stats, listing, item, edit, retract; rights on each."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from feedback_asgi.core.records import Exchange, utc_now
from feedback_asgi.kit import FeedbackKit
from feedback_asgi.storage.stats import StatsQuery
from tests.endpoint.apps import SURFACES, Surface, build, client, error_of

ADMIN = {"Authorization": "Bearer admin-secret-token-0123456789"}


@pytest.fixture
def kit() -> FeedbackKit:
    return FeedbackKit.for_testing(admin_token=ADMIN["Authorization"][7:])


@pytest.fixture(params=SURFACES)
def surface(request: pytest.FixtureRequest, kit: FeedbackKit) -> Surface:
    return build(request.param, kit)


async def vote(http: httpx.AsyncClient, surface: Surface, kit: FeedbackKit, trace: str,
               subject: str, kind: str = "rating", value: Any = 4,
               context: dict[str, Any] | None = None) -> str:
    body: dict[str, Any] = {"trace_id": trace, "type": kind, "value": value}
    if context:
        body["metadata"] = {}
    response = await http.post(surface.submit, json=body,
                               headers={"X-Feedback-Token": kit.signer.sign(trace, subject)})
    assert response.status_code == 201, response.text
    return str(response.json()["feedback_id"])


READ_ROUTES = ["/feedback/stats", "/feedback/stats/timeseries", "/feedback/", "/feedback"]


async def test_read_routes_need_rights(kit: FeedbackKit, surface: Surface) -> None:
    async with client(surface.app) as http:
        item_id = await vote(http, surface, kit, "t1", "alice")
        paths = [p for p in READ_ROUTES if not (surface.name == "starlette" and p == "/feedback")]
        for path in paths:
            anonymous = await http.get(path)
            assert anonymous.status_code == 401, (path, anonymous.text)
            assert error_of(anonymous)["code"] == "unauthorized"
            wrong = await http.get(path, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            submitter = await http.get(path, headers={"X-Feedback-Token": kit.signer.sign("t1", "alice")})
            assert submitter.status_code == 403, path
            admin = await http.get(path, headers=ADMIN)
            assert admin.status_code == 200, (path, admin.text)
        other = {"X-Feedback-Token": kit.signer.sign("t1", "mallory")}
        assert (await http.get(f"/feedback/{item_id}")).status_code == 401
        # another person's item answers as one that does not exist (nothing to learn)
        unknown = await http.get("/feedback/00000000-0000-8000-8000-000000000000", headers=other)
        assert unknown.status_code == 404
        for answer in (
            await http.get(f"/feedback/{item_id}", headers=other),
            await http.patch(f"/feedback/{item_id}", json={"value": 1}, headers=other),
            await http.delete(f"/feedback/{item_id}", headers=other),
            await http.delete(f"/feedback/{item_id}",
                              headers={"X-Feedback-Token": kit.signer.sign("t2", "alice")}),
        ):
            assert answer.status_code == 404
            assert answer.json() == unknown.json()
        assert (await http.delete(f"/feedback/{item_id}")).status_code == 401
        assert (await http.get(f"/feedback/{item_id}", headers=ADMIN)).status_code == 200
        assert (await kit.store.get(item_id)) is not None
        assert len(await kit.store.find_by_trace("t1")) == 1  # nothing changed


async def test_unconfigured_rights_answer_401(surface: Surface) -> None:
    kit = FeedbackKit.for_testing()  # no admin token, no authorizer
    app = build(surface.name, kit).app
    async with client(app) as http:
        response = await http.get("/feedback/stats", headers={"Authorization": "Bearer "})
    assert response.status_code == 401


async def test_authorizer_grants_rights(surface: Surface) -> None:
    seen: list[str] = []

    async def authorizer(scope: Any) -> bool:
        seen.append(scope["path"])
        return dict(scope["headers"]).get(b"x-role") == b"analyst"

    kit = FeedbackKit(FeedbackKit.for_testing().config, store=FeedbackKit.for_testing().store,
                      authorizer=authorizer)
    async with client(build(surface.name, kit).app) as http:
        denied = await http.get("/feedback/stats")
        granted = await http.get("/feedback/stats", headers={"X-Role": "analyst"})
    assert denied.status_code == 401
    assert granted.status_code == 200
    assert seen


async def test_owner_edits_and_retracts_and_stats_follow(kit: FeedbackKit, surface: Surface) -> None:
    async with client(surface.app) as http:
        mine = {"X-Feedback-Token": kit.signer.sign("t1", "alice")}
        item_id = await vote(http, surface, kit, "t1", "alice", value=2)
        await vote(http, surface, kit, "t2", "bob", value=4)
        stats = (await http.get("/feedback/stats?window=1h", headers=ADMIN)).json()
        assert stats["totals"]["average_rating"] == 3.0
        assert stats["window"] == "1h"
        edited = await http.put(f"/feedback/{item_id}", json={"value": 5, "comment": "better"},
                                headers=mine)
        assert edited.status_code == 200, edited.text
        assert edited.json()["supersedes"] == item_id
        stats = (await http.get("/feedback/stats?window=1h", headers=ADMIN)).json()
        assert stats["totals"]["average_rating"] == 4.5
        assert stats["totals"]["total_count"] == 2
        patched = await http.patch(f"/feedback/{item_id}", json={"value": 1}, headers=mine)
        assert patched.status_code == 200
        shown = (await http.get(f"/feedback/{item_id}", headers=mine)).json()
        assert [v["value"] for v in shown["history"]] == [2, 5, 1]
        assert shown["history"][-1]["metadata"]["comment"] == "better"  # PATCH keeps it
        assert shown["current_id"] == patched.json()["feedback_id"]
        retracted = await http.delete(f"/feedback/{item_id}", headers=mine)
        assert retracted.status_code == 204
        assert retracted.content == b""
        assert (await http.delete(f"/feedback/{item_id}", headers=mine)).status_code == 204
        stats = (await http.get("/feedback/stats?window=1h", headers=ADMIN)).json()
        assert stats["totals"]["total_count"] == 1
        assert stats["totals"]["average_rating"] == 4.0
        shown = (await http.get(f"/feedback/{item_id}", headers=ADMIN)).json()
        assert shown["current_id"] is None
        assert shown["history"][-1]["tombstone"] is True
        again = await http.put(f"/feedback/{item_id}", json={"value": 3}, headers=mine)
        assert again.status_code == 409
    (total,) = await kit.store.stats(StatsQuery(utc_now().replace(year=2000), None))  # type: ignore[attr-defined]
    assert total.total_count == 1


async def test_admin_edits_validation_and_server_post(kit: FeedbackKit, surface: Surface) -> None:
    async with client(surface.app) as http:
        item_id = await vote(http, surface, kit, "t1", "alice", value=2)
        bad = await http.put(f"/feedback/{item_id}", json={"value": 99}, headers=ADMIN)
        assert bad.status_code == 422
        assert "value" in error_of(bad)["fields"]
        assert (await http.put(f"/feedback/{item_id}", json={}, headers=ADMIN)).status_code == 422
        unknown = await http.patch(f"/feedback/{item_id}", json={"colour": 1}, headers=ADMIN)
        assert unknown.status_code == 422
        assert (await http.get("/feedback/no-such-id", headers=ADMIN)).status_code == 404
        ok = await http.patch(f"/feedback/{item_id}", json={"value": 3}, headers=ADMIN)
        assert ok.status_code == 200
        assert (await kit.store.get(ok.json()["feedback_id"])).metadata["edited_by"] == "admin"  # type: ignore[union-attr]
        # an authenticated server caller posts without a feedback token
        server = await http.post(surface.submit, json={"trace_id": "srv-1", "type": "thumbs",
                                                       "value": "up"}, headers=ADMIN)
        assert server.status_code == 201, server.text
        saved = await kit.store.get(server.json()["feedback_id"])
        assert saved is not None
        assert saved.metadata["submitter"] == "server"
        no_token = await http.post(surface.submit, json={"trace_id": "srv-2", "type": "thumbs",
                                                         "value": "up"})
        assert no_token.status_code == 401


async def test_stats_routes_json(kit: FeedbackKit, surface: Surface) -> None:
    async with client(surface.app) as http:
        for trace, value in (("a1", 4), ("a2", 2)):
            await vote(http, surface, kit, trace, "alice", value=value)
        await vote(http, surface, kit, "a3", "alice", kind="thumbs", value="up")
        stats = await http.get("/feedback/stats?window=24h&unique=true", headers=ADMIN)
        body = stats.json()
        assert body["groups"][0]["count_by_type"] == {"rating": 2, "thumbs": 1}
        assert body["totals"]["thumbs_up_rate"] == 1.0
        assert body["totals"]["unique_users"] == 0
        series = await http.get("/feedback/stats/timeseries?window=2h&interval=hour", headers=ADMIN)
        assert series.status_code == 200
        assert sum(p["total_count"] for p in series.json()["points"]) == 3
        for query, field in (("window=7y", "window"), ("by=colour", "by"), ("since=yesterday", "since"),
                             ("interval=week", "interval"), ("nope=1", "nope"),
                             ("window=1d&window=2d", "window")):
            path = "/feedback/stats" + ("/timeseries" if "interval" in query else "")
            bad = await http.get(f"{path}?{query}", headers=ADMIN)
            assert bad.status_code == 422, query
            assert field in error_of(bad)["fields"], query
        since = await http.get("/feedback/stats?since=2020-01-01T00:00:00+00:00&by=model",
                               headers=ADMIN)
        assert since.status_code == 200
        assert since.json()["groups"][0]["key"] is None


async def test_keyset_pagination_over_the_route(kit: FeedbackKit, surface: Surface) -> None:
    async with client(surface.app) as http:
        ids = {await vote(http, surface, kit, f"p{i}", "alice", value=1 + i % 5) for i in range(7)}
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            query = "limit=3" + (f"&cursor={cursor}" if cursor else "")
            page = (await http.get(f"/feedback/?{query}", headers=ADMIN)).json()
            seen += [item["id"] for item in page["items"]]
            pages += 1
            if pages == 1:  # a new item while paginating does not shift later pages
                await vote(http, surface, kit, "late", "bob")
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == 3
        assert set(seen) == ids
        assert len(seen) == len(set(seen))
        only = (await http.get("/feedback/?trace=p3&type=rating", headers=ADMIN)).json()
        assert [item["context"]["trace_id"] for item in only["items"]] == ["p3"]
        assert (await http.get("/feedback/?limit=0", headers=ADMIN)).status_code == 422
        assert (await http.get("/feedback/?cursor=garbage", headers=ADMIN)).status_code == 422


def test_fastapi_documents_the_read_routes(kit: FeedbackKit) -> None:
    app = build("fastapi", kit).app
    paths = app.openapi()["paths"]
    assert set(paths["/feedback/{feedback_id}"]) == {"get", "put", "patch", "delete"}
    stats = paths["/feedback/stats"]["get"]
    assert {p["name"] for p in stats["parameters"]} >= {"window", "by", "model", "unique"}
    assert "StatsResponse" in str(stats["responses"]["200"])
    assert "FeedbackPage" in str(paths["/feedback"]["get"]["responses"]["200"])
    assert "TimeseriesResponse" in str(paths["/feedback/stats/timeseries"]["get"]["responses"])


async def test_list_and_stats_filter_on_the_correlation_ids(
    kit: FeedbackKit, surface: Surface
) -> None:
    otel = "0af7651916cd43dd8448eb211c80319c"
    for number, (request_id, trace_of_otel) in enumerate(
        (("req-a", otel), ("req-b", otel), ("req-a", None))
    ):
        await kit.exchanges.put(Exchange(trace_id=f"c{number}", request_id=request_id,
                                         otel_trace_id=trace_of_otel, model="m"))
    async with client(surface.app) as http:
        for number in range(3):
            await vote(http, surface, kit, f"c{number}", f"u{number}", value=number + 1)
        listed = await http.get("/feedback/?request_id=req-a", headers=ADMIN)
        stats = await http.get(f"/feedback/stats?otel_trace_id={otel}&by=model", headers=ADMIN)
        series = await http.get("/feedback/stats/timeseries?request_id=req-b", headers=ADMIN)
    assert listed.status_code == 200, listed.text
    assert sorted(item["context"]["trace_id"] for item in listed.json()["items"]) == ["c0", "c2"]
    assert stats.status_code == 200, stats.text
    (group,) = stats.json()["groups"]
    assert (group["key"], group["total_count"], group["average_rating"]) == ("m", 2, 1.5)
    assert series.status_code == 200, series.text
    assert sum(point["total_count"] for point in series.json()["points"]) == 1
