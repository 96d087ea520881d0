"""POST /feedback/export on every surface: rights, options, NDJSON body, errors; and uvicorn."""

from __future__ import annotations

import pytest

from feedback_asgi.core.records import FeedbackItem
from feedback_asgi.kit import FeedbackKit
from tests.endpoint.apps import SURFACES, Surface, build, client, error_of
from tests.export import fixtures as fx

ADMIN = {"Authorization": "Bearer admin-secret-token-0123456789"}
WINDOW = {"since": fx.SINCE.isoformat(), "until": fx.UNTIL.isoformat()}


@pytest.fixture
async def kit() -> FeedbackKit:
    kit = FeedbackKit.for_testing(admin_token=ADMIN["Authorization"][7:])
    await fx.load(kit.store)
    return kit


@pytest.fixture(params=SURFACES)
def surface(request: pytest.FixtureRequest, kit: FeedbackKit) -> Surface:
    return build(request.param, kit)


async def test_export_needs_admin_rights(kit: FeedbackKit, surface: Surface) -> None:
    async with client(surface.app) as http:
        anonymous = await http.post("/feedback/export", params=WINDOW)
        assert anonymous.status_code == 401
        assert error_of(anonymous)["code"] == "unauthorized"
        wrong = await http.post("/feedback/export", params=WINDOW,
                                headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        submitter = await http.post("/feedback/export/kto", params=WINDOW,
                                    headers={"X-Feedback-Token": kit.signer.sign("t1", "alice")})
        assert submitter.status_code == 403
        assert "messages" not in anonymous.text + wrong.text + submitter.text


async def test_export_streams_ndjson(surface: Surface) -> None:
    async with client(surface.app) as http:
        response = await http.post("/feedback/export", params=WINDOW, headers=ADMIN)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/x-ndjson"
        assert "content-length" not in response.headers
        assert response.text == "".join(fx.FINETUNE)
        kto = await http.post("/feedback/export/kto", params=WINDOW, headers=ADMIN)
        assert kto.text == "".join(fx.KTO)
        body = {**WINDOW, "kind": "preferences", "format": "openai"}
        prefs = await http.post("/feedback/export", json=body, headers=ADMIN)
        assert prefs.text == "".join(fx.PREFERENCES_OPENAI)
        m2 = await http.post("/feedback/export", params={**WINDOW, "model": "m2"}, headers=ADMIN)
        assert m2.text == fx.FINETUNE[2] + fx.FINETUNE[5]


async def test_export_option_errors(surface: Surface) -> None:
    async with client(surface.app) as http:
        for params, field in (({"since": "yesterday"}, "since"), ({"kind": "essays"}, "kind"),
                              ({"format": "openai", "kind": "labels"}, "format"),
                              ({"colour": "red"}, "colour")):
            response = await http.post("/feedback/export", params=params, headers=ADMIN)
            assert response.status_code == 422, (params, response.text)
            assert field in error_of(response)["fields"]
        get = await http.get("/feedback/export", headers=ADMIN)
        assert get.status_code == 405


async def test_export_storage_down_is_503() -> None:
    kit = FeedbackKit.for_testing(admin_token=ADMIN["Authorization"][7:])

    class Down(type(kit.store)):  # type: ignore[misc]
        async def iter_items(self, **kwargs: object):  # type: ignore[no-untyped-def,override]
            from feedback_asgi.core.exceptions import StorageUnavailableError

            raise StorageUnavailableError("feedback database unavailable: test")
            yield FeedbackItem("thumbs", 1)

    kit.store = Down()  # type: ignore[misc]
    async with client(build("endpoint", kit).app) as http:
        response = await http.post("/feedback/export", headers=ADMIN)
    assert response.status_code == 503
    assert error_of(response)["code"] == "storage_unavailable"
