"""Tried as an attacker would, through a real uvicorn server, on PostgreSQL, MariaDB and SQLite
with Redis: the app of the README (FastAPI, SessionMiddleware, the middleware and the router). Identities come
from the server, the id a token is signed for is minted per response, a stored exchange is
never replaced, and nobody reads, edits or retracts what another person sent."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.middleware.sessions import SessionMiddleware

from feedback_asgi import FeedbackContext, FeedbackKit, FeedbackMiddleware
from feedback_asgi.analytics import feedback_stats
from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.feedback.votes import vote_slot_id
from feedback_asgi.integrations.fastapi import feedback_router
from tests import services
from tests.asgi.harness import serve

pytestmark = [pytest.mark.redis]

SECRET = "identity-tests-secret-key-0123456789abcdef"
ADMIN = "identity-tests-admin-token-0123456789"


def build_app(kit: FeedbackKit) -> FastAPI:
    app = FastAPI()

    @app.post("/login")
    async def login(request: Request) -> dict[str, str]:
        # the app's own session: an id it minted, in a cookie it signs
        request.session["session_id"] = secrets.token_hex(16)
        return {"status": "in"}

    @app.post("/chat")
    async def chat(body: dict[str, Any]) -> dict[str, str]:
        async with FeedbackContext(kit.collector, operation="chat") as ctx:
            ctx.set_input(body["message"])
            ctx.set_metadata(model="model-a", provider="local")
            answer = f"answer to {body['message']}"
            ctx.set_result(answer)
        return {"answer": answer}

    app.add_middleware(FeedbackMiddleware, kit=kit, serve_endpoint=False)
    app.add_middleware(SessionMiddleware, secret_key="session-signing-secret-0123456789")
    app.include_router(feedback_router(kit), prefix="/feedback")
    return app


@pytest.fixture(params=["postgres", "mysql", "sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return services.database_url_for(request, tmp_path)


@pytest.fixture
async def kit(database_url: str, redis_url: str, redis_prefix: str) -> AsyncIterator[FeedbackKit]:
    kit = FeedbackKit(FeedbackConfig(
        database_url=database_url, redis_url=redis_url, redis_key_prefix=redis_prefix,
        secret_key=SECRET, admin_token=ADMIN, rate_limit_per_minute=5, session_cookie="sid",
    ))
    try:
        yield kit
    finally:
        await kit.shutdown()


@pytest.fixture
async def url(kit: FeedbackKit) -> AsyncIterator[str]:
    async with serve(build_app(kit)) as base:
        yield base


async def _chat(http: httpx.AsyncClient, message: str, **headers: str) -> tuple[str, str]:
    answer = await http.post("/chat", json={"message": message}, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.headers["x-trace-id"], answer.headers["x-feedback-token"]


async def _vote(http: httpx.AsyncClient, trace: str, token: str, value: str = "up",
                **extra: Any) -> httpx.Response:
    return await http.post("/feedback", json={"trace_id": trace, "type": "thumbs",
                                              "value": value, **extra},
                           headers={"X-Feedback-Token": token})


async def test_a_client_header_is_never_a_session_and_tokens_hide_their_subject(
    kit: FeedbackKit, url: str
) -> None:
    async with httpx.AsyncClient(base_url=url) as victim, \
            httpx.AsyncClient(base_url=url) as attacker:
        await victim.post("/login")
        trace, token = await _chat(victim, "victim's private question")
        assert (await _vote(victim, trace, token)).status_code == 201
        stored = await kit.store.find_by_trace(trace)
        session = stored[0].context["session_id"]
        # nothing in the token names the session, in any spelling
        assert session not in token
        assert session.encode().hex() not in token
        # the victim may list its session with its token
        mine = await victim.get(f"/feedback/sessions/{session}",
                                headers={"X-Feedback-Token": token})
        assert mine.status_code == 200
        assert [item["context"]["input"] for item in mine.json()] == [
            "victim's private question"]
        # the attacker claims the victim's session by header: the server ignores it
        own_trace, own_token = await _chat(attacker, "attacker", **{"X-Session-Id": session})
        assert kit.signer.verify(own_token, own_trace).unwrap().anonymous
        listing = await attacker.get(f"/feedback/sessions/{session}",
                                     headers={"X-Feedback-Token": own_token})
        assert listing.status_code == 403
        assert "victim's private question" not in listing.text
        # nor can it vote on the victim's response, or replace the victim's vote
        assert (await _vote(attacker, trace, own_token, "down")).status_code == 403
    live = await kit.store.find_by_trace(trace)
    assert [(item.value, item.context["session_id"]) for item in live] == [(1, session)]


async def test_the_response_id_is_minted_and_a_stored_exchange_never_replaced(
    kit: FeedbackKit, url: str
) -> None:
    async with httpx.AsyncClient(base_url=url) as victim, \
            httpx.AsyncClient(base_url=url) as attacker:
        trace, token = await _chat(victim, "victim's prompt")
        # the attacker sends the victim's id in every header that could carry it
        traceparent = f"00-{trace}-00f067aa0ba902b7-01" if len(trace) == 32 else ""
        forged_trace, forged_token = await _chat(
            attacker, "attacker's prompt", **{"X-Trace-Id": trace, "X-Request-ID": trace,
                                              "traceparent": traceparent})
        assert forged_trace != trace
        assert kit.signer.verify(forged_token, trace).is_err()  # no token for the victim's id
        # the victim's later vote rates the victim's own text
        voted = await _vote(victim, trace, token)
        assert voted.status_code == 201, voted.text
        item_id = voted.json()["feedback_id"]
        # its id is no function of public values: nobody can name it without the secret
        assert item_id != vote_slot_id(trace, "thumbs", "anonymous", key=b"")
        # the attacker's own token reads, edits and retracts nothing of the victim's
        with_token = {"X-Feedback-Token": forged_token}
        unknown = "00000000-0000-8000-8000-000000000000"
        for method, body in (("GET", None), ("PATCH", {"value": "down"}),
                             ("PUT", {"value": "down"}), ("DELETE", None)):
            other = await attacker.request(method, f"/feedback/{item_id}", json=body,
                                           headers=with_token)
            missing = await attacker.request(method, f"/feedback/{unknown}", json=body,
                                             headers=with_token)
            assert (other.status_code, missing.status_code) == (404, 404), method
            assert other.json() == missing.json()
            # without any credential: the same 401 whether the item exists or not
            bare = await attacker.request(method, f"/feedback/{item_id}", json=body)
            bare_missing = await attacker.request(method, f"/feedback/{unknown}", json=body)
            assert (bare.status_code, bare_missing.status_code) == (401, 401), method
            assert bare.json() == bare_missing.json()
        # the owner still reads and retracts its own item with its token
        own = await victim.get(f"/feedback/{item_id}", headers={"X-Feedback-Token": token})
        assert own.status_code == 200
        assert own.json()["item"]["context"]["input"] == "victim's prompt"
    exchange = await kit.find_exchange(trace)
    assert exchange is not None
    assert exchange.input == "victim's prompt"
    forged = await kit.find_exchange(forged_trace)
    assert forged is not None
    assert forged.request_id == trace  # what the client said, kept for correlation only
    (item,) = await kit.store.find_by_trace(trace)
    assert item.context["input"] == "victim's prompt"


async def test_subjects_a_client_mints_stay_within_its_address_limit(
    kit: FeedbackKit, url: str
) -> None:
    answers = []
    for number in range(20):
        # a fresh unsigned session cookie each time: a new subject each time
        async with httpx.AsyncClient(base_url=url, cookies={"sid": f"rotated-{number}"}) as http:
            trace, token = await _chat(http, f"question {number}")
            assert not kit.signer.verify(token, trace).unwrap().anonymous
            answers.append(await _vote(http, trace, token))
    statuses = [answer.status_code for answer in answers]
    assert statuses.count(201) == 5, statuses
    assert set(statuses[5:]) == {429}


async def test_a_token_holder_sets_no_group_and_no_reserved_metadata(
    kit: FeedbackKit, url: str
) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        trace, token = await _chat(http, "hello")
        reserved = await _vote(http, trace, token, metadata={"submitter": "someone-else"})
        assert reserved.status_code == 422
        assert "metadata.submitter" in reserved.json()["error"]["fields"]
        chat = await http.post("/feedback", json={"query": "q", "response": "r", "rating": 1,
                                                  "model": "model-z", "project": "p-z"},
                               headers={"X-Feedback-Token": token})
        assert chat.status_code == 201, chat.text
        item_id = chat.json()["feedback_id"]
        edit = await http.patch(f"/feedback/{item_id}", json={"metadata": {"edited_by": "x"}},
                                headers={"X-Feedback-Token": token})
        assert edit.status_code == 422
        assert "metadata.edited_by" in edit.json()["error"]["fields"]
    item = await kit.store.get(item_id)
    assert item is not None
    assert item.context["model"] == "model-a"  # what the app captured, not the body's claim
    assert item.metadata["client_model"] == "model-z"
    report = await feedback_stats(kit.store, window="1d", by="project")
    assert "p-z" not in [group.key for group in report.groups]
