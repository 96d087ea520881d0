"""Starlette: ``Mount("/feedback", routes=feedback_routes(kit))`` with SessionMiddleware and
AuthenticationMiddleware providing the session and the user."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from feedback_asgi.capture.exchange import session_subject
from feedback_asgi.context import FeedbackContext
from feedback_asgi.integrations.starlette import feedback_routes
from feedback_asgi.kit import FeedbackKit
from feedback_asgi.middleware import FeedbackMiddleware
from tests.endpoint.apps import client, error_of


class HeaderAuth(AuthenticationBackend):
    """The app's own (test) authentication: the user named in X-Test-User."""

    async def authenticate(
        self, conn: HTTPConnection
    ) -> tuple[AuthCredentials, SimpleUser] | None:
        name = conn.headers.get("x-test-user")
        return (AuthCredentials(["authenticated"]), SimpleUser(name)) if name else None


async def login(request: Request) -> JSONResponse:
    request.session["session_id"] = request.query_params["sid"]
    return JSONResponse({"ok": True})


async def chat(request: Request) -> JSONResponse:
    body = await request.json()
    async with FeedbackContext(operation="chat") as ctx:
        ctx.set_input(body["message"])
        ctx.set_metadata(model="m-star")
        ctx.set_result(f"answer to {body['message']}")
    return JSONResponse({"answer": ctx.result})


def make_app(kit: FeedbackKit, *, serve_endpoint: bool = False) -> Starlette:
    return Starlette(
        routes=[
            Route("/login", login),
            Route("/chat", chat, methods=["POST"]),
            Mount("/feedback", routes=feedback_routes(kit)),
        ],
        middleware=[
            Middleware(SessionMiddleware, secret_key="session-secret"),
            Middleware(AuthenticationMiddleware, backend=HeaderAuth()),
            Middleware(FeedbackMiddleware, kit=kit, serve_endpoint=serve_endpoint),
        ],
    )


@pytest.fixture
def kit() -> FeedbackKit:
    return FeedbackKit.for_testing()


async def test_session_and_user_reach_the_stored_item(kit: FeedbackKit) -> None:
    async with client(make_app(kit)) as http:
        assert (await http.get("/login", params={"sid": "sess-123"})).status_code == 200
        answer = await http.post("/chat", json={"message": "hi"},
                                 headers={"X-Test-User": "alice"})
        assert answer.status_code == 200
        trace, token = answer.headers["x-trace-id"], answer.headers["x-feedback-token"]
        # the token is issued to the session (the middleware's choice: session, else user)
        claims = kit.signer.verify(token, trace).unwrap()
        assert kit.signer.issued_to(claims, session_subject("sess-123"))
        assert "sess-123" not in token
        posted = await http.post("/feedback/", json={"trace_id": trace, "type": "thumbs",
                                                      "value": "up"},
                                 headers={"X-Feedback-Token": token})
    assert posted.status_code == 201, posted.text
    item = await kit.store.get(posted.json()["feedback_id"])
    assert item is not None
    assert item.context["session_id"] == "sess-123"
    assert item.context["user_id"] == "alice"
    assert (item.context["input"], item.context["output"]) == ("hi", "answer to hi")
    assert item.context["model"] == "m-star"


async def test_the_request_session_may_read_its_own_feedback(kit: FeedbackKit) -> None:
    async with client(make_app(kit)) as http:
        await http.get("/login", params={"sid": "sess-9"})
        answer = await http.post("/chat", json={"message": "q"})
        token = answer.headers["x-feedback-token"]
        await http.post("/feedback/", json={"rating": "down", "comment": "no"},
                        headers={"X-Feedback-Token": token})
        own = await http.get("/feedback/sessions/sess-9")  # session cookie only, no token
        other = await http.get("/feedback/sessions/sess-10")
    assert own.status_code == 200
    assert [(i["feedback_type"], i["value"]) for i in own.json()] == [("thumbs", -1)]
    assert other.status_code == 401
    assert error_of(other)["code"] == "token_missing"


async def test_post_to_the_mount_path_itself_is_redirected_keeping_the_method(
    kit: FeedbackKit,
) -> None:
    async with client(make_app(kit)) as http:
        response = await http.post("/feedback", json={"rating": "up"})
    assert response.status_code == 307
    assert response.headers["location"].endswith("/feedback/")


@pytest.mark.parametrize("serve_endpoint", [True, False])
async def test_routes_answer_the_same_whether_the_middleware_or_the_mount_serves(
    kit: FeedbackKit, serve_endpoint: bool
) -> None:
    async with client(make_app(kit, serve_endpoint=serve_endpoint)) as http:
        bad = await http.post("/feedback/", content=b"{oops",
                              headers={"Content-Type": "application/json"})
        missing = await http.get("/feedback/no/such/route")
    assert bad.status_code == 400
    assert error_of(bad)["code"] == "invalid_json"
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "not_found"
