"""FastAPI: ``feedback_router``, its OpenAPI document, ``get_feedback_context``, and the
middleware + router combination at one prefix."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI

from feedback_asgi.context import FeedbackContext
from feedback_asgi.integrations.fastapi import feedback_router, get_feedback_context
from feedback_asgi.kit import FeedbackKit
from feedback_asgi.middleware import FeedbackMiddleware
from tests.endpoint.apps import SURFACES, build, client, error_of


def make_app(kit: FeedbackKit) -> FastAPI:
    app = FastAPI()
    app.add_middleware(FeedbackMiddleware, kit=kit, serve_endpoint=False)
    app.include_router(feedback_router(kit), prefix="/feedback")

    @app.post("/ask")
    async def ask(
        body: dict[str, str], ctx: Annotated[FeedbackContext, Depends(get_feedback_context)]
    ) -> dict[str, str]:
        ctx.set_input(body["question"])
        ctx.set_metadata(model="m-fast", intent="qa")
        answer = body["question"].upper()
        ctx.set_result(answer)
        return {"answer": answer, "trace_id": ctx.trace_id}

    return app


async def test_dependency_context_enriches_the_rated_exchange() -> None:
    kit = FeedbackKit.for_testing()
    async with client(make_app(kit)) as http:
        answer = await http.post("/ask", json={"question": "why?"})
        assert answer.status_code == 200
        trace = answer.headers["x-trace-id"]
        assert answer.json()["trace_id"] == trace
        posted = await http.post(
            "/feedback", json={"trace_id": trace, "type": "rating", "value": 5},
            headers={"X-Feedback-Token": answer.headers["x-feedback-token"]},
        )
    assert posted.status_code == 201, posted.text
    item = await kit.store.get(posted.json()["feedback_id"])
    assert item is not None
    assert (item.context["input"], item.context["output"]) == ("why?", "WHY?")
    assert (item.context["model"], item.context["intent"]) == ("m-fast", "qa")
    assert item.context["operation"] == "ask"


def test_openapi_documents_every_route_with_models() -> None:
    app = make_app(FeedbackKit.for_testing())
    document = app.openapi()
    paths = document["paths"]
    assert set(paths) >= {"/feedback", "/feedback/sessions/{session_id}", "/feedback/health"}
    assert not any("{path}" in p for p in paths)  # the JSON 404/405 catch-alls stay hidden
    post = paths["/feedback"]["post"]
    assert set(paths["/feedback"]) == {"get", "post"}  # the listing (read/admin)
    shapes = post["requestBody"]["content"]["application/json"]
    assert [s["title"] for s in shapes["schema"]["anyOf"]] == [
        "FeedbackSubmission", "ThumbsSubmission", "ChatRatingSubmission"
    ]
    assert len(shapes["examples"]) >= 3
    assert {p["name"] for p in post["parameters"]} == {"X-Feedback-Token", "Idempotency-Key"}
    statuses = set(post["responses"])
    assert statuses >= {"201", "400", "401", "403", "413", "415", "422", "503"}
    accepted = post["responses"]["201"]["content"]["application/json"]["schema"]
    assert accepted["$ref"].endswith("/FeedbackAccepted")
    error = post["responses"]["422"]["content"]["application/json"]["schema"]
    assert error["$ref"].endswith("/ErrorResponse")
    sessions = paths["/feedback/sessions/{session_id}"]["get"]
    listed = sessions["responses"]["200"]["content"]["application/json"]["schema"]
    assert listed["items"]["$ref"].endswith("/StoredFeedback")
    assert set(sessions["responses"]) >= {"200", "401", "403", "503"}
    assert set(paths["/feedback/health"]["get"]["responses"]) >= {"200", "503"}
    schemas = document["components"]["schemas"]
    assert {"FeedbackAccepted", "ErrorResponse", "ErrorBody", "StoredFeedback",
            "HealthReport"} <= set(schemas)
    assert schemas["FeedbackAccepted"]["examples"]


@pytest.mark.parametrize("serve_endpoint", [True, False])
async def test_middleware_and_router_at_one_prefix(serve_endpoint: bool) -> None:
    """With the default the middleware answers /feedback itself (same core, its kit);
    ``serve_endpoint=False`` leaves the path to the router."""
    middleware_kit, router_kit = FeedbackKit.for_testing(), FeedbackKit.for_testing()
    app = FastAPI()
    app.add_middleware(FeedbackMiddleware, kit=middleware_kit, serve_endpoint=serve_endpoint)
    app.include_router(feedback_router(router_kit), prefix="/feedback")
    token = middleware_kit.signer.sign("t1")  # both kits share the testing secret
    async with client(app) as http:
        response = await http.post("/feedback", json={"trace_id": "t1", "type": "thumbs",
                                                      "value": 1},
                                   headers={"X-Feedback-Token": token})
    assert response.status_code == 201
    served_by = middleware_kit if serve_endpoint else router_kit
    other = router_kit if serve_endpoint else middleware_kit
    assert await served_by.store.get(response.json()["feedback_id"]) is not None
    assert await other.store.get(response.json()["feedback_id"]) is None


async def test_every_surface_sends_byte_identical_errors() -> None:
    bodies: dict[str, list[Any]] = {}
    for name in SURFACES:
        surface = build(name, FeedbackKit.for_testing())
        async with client(surface.app) as http:
            answers = [
                await http.post(surface.submit, content=b'{"a": 1, "a": 2}',
                                headers={"Content-Type": "application/json"}),
                await http.post(surface.submit, json={"type": "rating", "value": 3}),
                await http.post(surface.submit, content=b"{}", headers={"Content-Type": "text/plain"}),
                await http.get("/feedback/unknown/route"),
            ]
        for answer in answers:
            error_of(answer)
        bodies[name] = [(a.status_code, a.content) for a in answers]
    assert [status for status, _ in bodies["endpoint"]] == [400, 401, 415, 404]
    for name in SURFACES:
        assert bodies[name] == bodies["endpoint"], name
