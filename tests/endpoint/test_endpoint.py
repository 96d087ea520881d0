"""POST /feedback and its errors through every surface: endpoint, middleware, Starlette, FastAPI."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest

from feedback_asgi.analytics import feedback_stats
from feedback_asgi.capture.exchange import session_subject
from feedback_asgi.core.records import Exchange
from feedback_asgi.kit import FeedbackKit
from feedback_asgi.storage.memory import MemoryFeedbackStore
from tests.endpoint.apps import SURFACES, Surface, build, call_raw, client, error_of

TRACE = "trace-1"


@pytest.fixture
def kit() -> FeedbackKit:
    return FeedbackKit.for_testing()


@pytest.fixture(params=SURFACES)
def surface(request: pytest.FixtureRequest, kit: FeedbackKit) -> Surface:
    return build(request.param, kit)


def token(kit: FeedbackKit, trace: str = TRACE, subject: str = "alice") -> str:
    return kit.signer.sign(trace, subject)


async def stored(kit: FeedbackKit) -> int:
    assert isinstance(kit.store, MemoryFeedbackStore)
    return len([item async for item in kit.store.iter_items(include_history=True)])


async def post(
    surface: Surface, body: Any, headers: dict[str, str] | None = None, **kwargs: Any
) -> Any:
    async with client(surface.app) as http:
        if isinstance(body, bytes):
            return await http.post(surface.submit, content=body, headers=headers, **kwargs)
        return await http.post(surface.submit, json=body, headers=headers, **kwargs)


# success


async def test_main_shape_is_stored_with_the_rated_exchange(
    kit: FeedbackKit, surface: Surface
) -> None:
    await kit.exchanges.put(
        Exchange(trace_id=TRACE, session_id="s1", user_id="alice", model="m1",
                 input="what is 2+2?", output="4")
    )
    response = await post(
        surface,
        {"trace_id": TRACE, "type": "rating", "value": 4, "comment": " fine ",
         "metadata": {"page": "chat"}},
        {"X-Feedback-Token": token(kit)},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "success"
    item = await kit.store.get(body["feedback_id"])
    assert item is not None
    assert (item.feedback_type, item.value, item.comment) == ("rating", 4.0, "fine")
    assert item.context["input"] == "what is 2+2?"
    assert item.context["output"] == "4"
    assert (item.context["model"], item.context["session_id"], item.context["user_id"]) == (
        "m1", "s1", "alice"
    )
    assert item.metadata["page"] == "chat"
    assert item.metadata["source"] == "http"
    assert "alice" not in json.dumps(item.metadata)  # the submitter is kept as a digest


async def test_thumbs_shorthand_with_token_in_body(kit: FeedbackKit, surface: Surface) -> None:
    response = await post(surface, {"rating": "down", "comment": "wrong", "token": token(kit)})
    assert response.status_code == 201, response.text
    item = await kit.store.get(response.json()["feedback_id"])
    assert item is not None
    assert (item.feedback_type, item.value, item.trace_id) == ("thumbs", -1, TRACE)


async def test_chat_shape_claims_of_a_token_holder_stay_metadata(
    kit: FeedbackKit, surface: Surface
) -> None:
    response = await post(
        surface,
        {"query": "hi", "response": "hello", "model": "m2", "rating": 1, "intent": "greet",
         "project": "p"},
        {"X-Feedback-Token": token(kit)},
    )
    assert response.status_code == 201, response.text
    item = await kit.store.get(response.json()["feedback_id"])
    assert item is not None
    assert item.value == 1
    # what the client claims about the rated answer never becomes what was rated
    assert not {"input", "output", "model", "intent", "project"} & item.context.keys()
    assert {k: item.metadata[k] for k in ("client_input", "client_output", "client_model",
                                          "client_intent", "client_project")} == {
        "client_input": "hi", "client_output": "hello", "client_model": "m2",
        "client_intent": "greet", "client_project": "p",
    }
    report = await feedback_stats(kit.store, window="1d", by="model")
    assert [group.key for group in report.groups] == [None]


async def test_chat_shape_of_a_server_caller_says_what_was_rated(kit: FeedbackKit) -> None:
    admin_kit = FeedbackKit.for_testing(admin_token="admin-token-0123456789")
    surface = build("endpoint", admin_kit)
    response = await post(
        surface,
        {"trace_id": TRACE, "query": "hi", "response": "hello", "model": "m2", "rating": 1},
        {"Authorization": "Bearer admin-token-0123456789"},
    )
    assert response.status_code == 201, response.text
    item = await admin_kit.store.get(response.json()["feedback_id"])
    assert item is not None
    assert (item.context["input"], item.context["model"]) == ("hi", "m2")
    assert item.metadata["submitter"] == "server"


async def test_captured_exchange_wins_over_the_body(kit: FeedbackKit, surface: Surface) -> None:
    await kit.exchanges.put(Exchange(trace_id=TRACE, input="real input", output="real output"))
    response = await post(
        surface, {"query": "claimed", "response": "claimed", "rating": -1},
        {"X-Feedback-Token": token(kit)},
    )
    item = await kit.store.get(response.json()["feedback_id"])
    assert item is not None
    assert (item.context["input"], item.context["output"]) == ("real input", "real output")


# errors: nothing stored, JSON shape, right status


def _deep(depth: int) -> bytes:
    return b'{"trace_id":"trace-1","type":"label","value":' + b"[" * depth + b"]" * depth + b"}"


BAD_BODIES = [
    pytest.param(b'{"trace_id": "trace-1", "type": "thumbs", "value": 1', 400, "invalid_json",
                 id="truncated"),
    pytest.param(b"{not json}", 400, "invalid_json", id="malformed"),
    pytest.param(b'{"type": "text", "value": "\xff\xfe"}', 400, "invalid_json", id="bad-utf8"),
    pytest.param(b'{"type": "thumbs", "type": "rating", "value": 1}', 400, "invalid_json",
                 id="duplicate-keys"),
    pytest.param(b'{"type": "rating", "value": NaN}', 400, "invalid_json", id="nan"),
    pytest.param(b'{"type": "rating", "value": Infinity}', 400, "invalid_json", id="infinity"),
    pytest.param(b'{"type": "rating", "value": 1e309}', 400, "invalid_json", id="1e309"),
    pytest.param(_deep(10_000), 400, "invalid_json", id="depth-10000"),
    pytest.param(b"[1, 2]", 422, "validation_error", id="not-an-object"),
    pytest.param(b'{"type": "sentiment", "value": 1}', 422, "validation_error",
                 id="unknown-kind"),
    pytest.param(b'{"type": "rating", "value": 9}', 422, "validation_error", id="out-of-range"),
    pytest.param(b'{"type": "rating", "value": 3, "admin": true}', 422, "validation_error",
                 id="unknown-field"),
    pytest.param(json.dumps({"type": "text", "value": "x" * 10_001}).encode(), 422,
                 "validation_error", id="oversized-text"),
    pytest.param(json.dumps({"type": "rating", "value": 3, "comment": "c" * 10_001}).encode(),
                 422, "validation_error", id="oversized-comment"),
    pytest.param(b'{"type": "rating", "value": 3, "metadata": {"k": "nul\\u0000"}}', 422,
                 "validation_error", id="nul-in-metadata"),
]


@pytest.mark.parametrize(("body", "status", "code"), BAD_BODIES)
async def test_bad_bodies(
    kit: FeedbackKit, surface: Surface, body: bytes, status: int, code: str
) -> None:
    response = await post(
        surface, body, {"Content-Type": "application/json", "X-Feedback-Token": token(kit)}
    )
    assert response.status_code == status, response.text
    assert error_of(response)["code"] == code
    assert await stored(kit) == 0


async def test_validation_errors_name_the_field(kit: FeedbackKit, surface: Surface) -> None:
    response = await post(
        surface, {"trace_id": TRACE, "type": "rating", "value": "five"},
        {"X-Feedback-Token": token(kit)},
    )
    assert response.status_code == 422
    assert "value" in error_of(response)["fields"]


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_wrong_content_type_is_415(
    kit: FeedbackKit, surface: Surface, content_type: str | None
) -> None:
    headers = {"X-Feedback-Token": token(kit)}
    if content_type:
        headers["Content-Type"] = content_type
    body = json.dumps({"trace_id": TRACE, "type": "thumbs", "value": 1}).encode()
    response = await post(surface, body, headers)
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"
    assert await stored(kit) == 0


def _expired(kit: FeedbackKit) -> str:
    return kit.signer.sign(TRACE, "alice", ttl_seconds=-10)


def _forged(kit: FeedbackKit) -> str:
    good = token(kit)
    head, signature = good.rsplit(".", 1)
    return f"{head}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"


def _respelled_expiry(kit: FeedbackKit, digit: str) -> str:
    """The same token with its expiry spelled another way (a leading zero, or a digit
    that is not ASCII in front): the same number to ``int()``, another text."""
    parts = token(kit).split(".")
    parts[2] = digit + parts[2] if digit == "0" else parts[2][:-1] + digit
    return ".".join(parts)


def _other_secret(kit: FeedbackKit) -> str:
    return FeedbackKit.for_testing(secret_key="another-secret-key-of-32-characters!").signer.sign(
        TRACE, "alice"
    )


@pytest.mark.parametrize(
    ("make", "status", "code"),
    [
        pytest.param(lambda kit: None, 401, "token_missing", id="missing"),
        pytest.param(_expired, 401, "token_expired", id="expired"),
        pytest.param(_forged, 401, "token_invalid", id="forged"),
        pytest.param(_other_secret, 401, "token_unknown_key", id="other-key"),
        pytest.param(lambda kit: token(kit)[:-12], 401, "token_malformed", id="truncated"),
        pytest.param(lambda kit: _respelled_expiry(kit, "\u00b2"), 401, "token_malformed",
                     id="superscript-digit"),
        pytest.param(lambda kit: _respelled_expiry(kit, "\u0661"), 401, "token_malformed",
                     id="arabic-indic-digit"),
        pytest.param(lambda kit: _respelled_expiry(kit, "0"), 401, "token_malformed",
                     id="leading-zero"),
        pytest.param(lambda kit: token(kit)[:20], 401, "token_malformed", id="cut-short"),
        pytest.param(lambda kit: token(kit, trace="trace-2"), 403, "token_wrong_trace",
                     id="other-trace"),
        pytest.param(lambda kit: "garbage", 401, "token_malformed", id="garbage"),
    ],
)
async def test_token_rejections(
    kit: FeedbackKit, surface: Surface, make: Any, status: int, code: str
) -> None:
    value = make(kit)
    body: dict[str, Any] = {"trace_id": TRACE, "type": "thumbs", "value": 1}
    headers = {}
    if value is not None and value.isascii():
        headers["X-Feedback-Token"] = value
    elif value is not None:  # a header holds latin-1 at best: the body's token field
        body["token"] = value
    response = await post(surface, body, headers)
    assert response.status_code == status, response.text
    assert error_of(response)["code"] == code
    assert await stored(kit) == 0


async def test_declared_oversized_body_is_refused_unread(kit: FeedbackKit, surface: Surface) -> None:
    """A 100 MB Content-Length: 413 before a single receive()."""

    def endless() -> Iterator[bytes]:
        while True:
            yield b" " * 65_536

    path = surface.submit
    result = await call_raw(
        surface.app, "POST", path,
        [(b"content-type", b"application/json"), (b"content-length", b"104857600")],
        endless(),
    )
    assert result.status == 413
    assert result.json()["error"]["code"] == "payload_too_large"
    assert result.receive_calls == 0


async def test_chunked_oversized_body_stops_at_the_limit(kit: FeedbackKit, surface: Surface) -> None:
    """100 MB sent without Content-Length: the endpoint stops pulling just past the limit."""
    chunk = 16_384
    chunks = itertools.repeat(b" " * chunk, 100 * 1024 * 1024 // chunk)
    result = await call_raw(
        surface.app, "POST", surface.submit, [(b"content-type", b"application/json")], chunks
    )
    assert result.status == 413
    assert result.json()["error"]["code"] == "payload_too_large"
    limit = kit.config.max_payload_bytes
    assert limit < result.bytes_pulled <= limit + chunk
    assert await stored(kit) == 0


async def test_unknown_route_and_wrong_method_are_json(kit: FeedbackKit, surface: Surface) -> None:
    async with client(surface.app) as http:
        missing = await http.get("/feedback/nothing/here")
        wrong = await http.delete(surface.submit)
        health_post = await http.post("/feedback/health", json={})
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "not_found"
    assert wrong.status_code == 405
    assert error_of(wrong)["code"] == "method_not_allowed"
    assert "POST" in wrong.headers["allow"]
    assert health_post.status_code == 405


async def test_bad_idempotency_key_is_400(kit: FeedbackKit, surface: Surface) -> None:
    response = await post(
        surface, {"trace_id": TRACE, "type": "thumbs", "value": 1},
        {"X-Feedback-Token": token(kit), "Idempotency-Key": "x" * 300},
    )
    assert response.status_code == 400
    assert error_of(response)["fields"] == {"Idempotency-Key": "invalid"}
    assert await stored(kit) == 0


# idempotency and one vote per person


async def test_same_idempotency_key_twice_stores_one_row(kit: FeedbackKit, surface: Surface) -> None:
    headers = {"X-Feedback-Token": token(kit), "Idempotency-Key": "retry-1"}
    body = {"trace_id": TRACE, "type": "thumbs", "value": "up"}
    first = await post(surface, body, headers)
    second = await post(surface, body, headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert await stored(kit) == 1


async def test_concurrent_duplicates_store_one_row(kit: FeedbackKit, surface: Surface) -> None:
    headers = {"X-Feedback-Token": token(kit), "Idempotency-Key": "burst"}
    body = {"trace_id": TRACE, "type": "rating", "value": 5}
    async with client(surface.app) as http:
        responses = await asyncio.gather(
            *(http.post(surface.submit, json=body, headers=headers) for _ in range(10))
        )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["feedback_id"] for r in responses}) == 1
    assert await stored(kit) == 1


async def test_second_vote_supersedes_and_counts_once(kit: FeedbackKit, surface: Surface) -> None:
    headers = {"X-Feedback-Token": token(kit)}
    up = await post(surface, {"trace_id": TRACE, "type": "thumbs", "value": "up"}, headers)
    down = await post(surface, {"trace_id": TRACE, "type": "thumbs", "value": "down"}, headers)
    assert up.status_code == down.status_code == 201
    live = await kit.store.find_by_trace(TRACE)
    assert [(i.id, i.value, i.supersedes) for i in live] == [
        (down.json()["feedback_id"], -1, up.json()["feedback_id"])
    ]
    summary = await kit.store.aggregate()
    assert (summary.thumbs_up, summary.thumbs_down, summary.total_count) == (0, 1, 1)
    # another person's vote on the same response is separate
    bob = await post(surface, {"trace_id": TRACE, "type": "thumbs", "value": "up"},
                     {"X-Feedback-Token": token(kit, subject="bob")})
    assert bob.status_code == 201
    assert len(await kit.store.find_by_trace(TRACE)) == 2


async def test_concurrent_votes_of_one_person_leave_one_live(
    kit: FeedbackKit, surface: Surface
) -> None:
    headers = {"X-Feedback-Token": token(kit)}
    async with client(surface.app) as http:
        responses = await asyncio.gather(
            *(
                http.post(surface.submit, headers=headers,
                          json={"trace_id": TRACE, "type": "thumbs", "value": v})
                for v in ("up", "down", "up", "down", "up", "down")
            )
        )
    assert {r.status_code for r in responses} == {201}
    assert len(await kit.store.find_by_trace(TRACE)) == 1
    assert len(await kit.store.find_by_trace(TRACE, include_history=True)) == 6


# origins and CORS


async def test_allowed_origins(surface: Surface) -> None:
    kit = FeedbackKit.for_testing(allowed_origins=["https://good.example"])
    surface = build(surface.name, kit)
    body = {"trace_id": TRACE, "type": "thumbs", "value": 1}
    async with client(surface.app) as http:
        bad = await http.post(surface.submit, json=body,
                              headers={"X-Feedback-Token": token(kit), "Origin": "https://evil.example"})
        good = await http.post(surface.submit, json=body,
                               headers={"X-Feedback-Token": token(kit), "Origin": "https://good.example"})
        preflight_bad = await http.options(
            surface.submit, headers={"Origin": "https://evil.example",
                                     "Access-Control-Request-Method": "POST"})
        preflight_good = await http.options(
            surface.submit, headers={"Origin": "https://good.example",
                                     "Access-Control-Request-Method": "POST",
                                     "Access-Control-Request-Headers": "x-feedback-token"})
    assert bad.status_code == 403
    assert error_of(bad)["code"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in bad.headers
    assert good.status_code == 201
    assert good.headers["access-control-allow-origin"] == "https://good.example"
    assert preflight_bad.status_code == 403
    assert "access-control-allow-origin" not in preflight_bad.headers
    assert preflight_good.status_code == 204
    assert preflight_good.headers["access-control-allow-origin"] == "https://good.example"
    assert "x-feedback-token" in preflight_good.headers["access-control-allow-headers"]
    assert "POST" in preflight_good.headers["access-control-allow-methods"]
    assert await stored(kit) == 1


# reads


async def test_session_feedback_is_the_callers_own(kit: FeedbackKit, surface: Surface) -> None:
    def session_token(trace: str, session: str) -> str:
        return token(kit, trace, subject=session_subject(session))

    for trace, session in (("t-a", "sess-a"), ("t-b", "sess-b")):
        await kit.exchanges.put(Exchange(trace_id=trace, session_id=session))
        response = await post(surface, {"trace_id": trace, "type": "thumbs", "value": 1},
                              {"X-Feedback-Token": session_token(trace, session)})
        assert response.status_code == 201
    async with client(surface.app) as http:
        own = await http.get("/feedback/sessions/sess-a",
                             headers={"X-Feedback-Token": session_token("t-a", "sess-a")})
        other = await http.get("/feedback/sessions/sess-b",
                               headers={"X-Feedback-Token": session_token("t-a", "sess-a")})
        # a user id that reads like a session id is no session
        user = await http.get("/feedback/sessions/sess-a",
                              headers={"X-Feedback-Token": token(kit, "t-a", "user:sess-a")})
        anonymous = await http.get("/feedback/sessions/sess-a")
        forged = await http.get("/feedback/sessions/sess-a",
                                headers={"X-Feedback-Token": _forged(kit)})
    assert own.status_code == 200
    items = own.json()
    assert [i["context"]["trace_id"] for i in items] == ["t-a"]
    assert other.status_code == 403
    assert error_of(other)["code"] == "forbidden"
    assert user.status_code == 403
    assert anonymous.status_code == 401
    assert error_of(anonymous)["code"] == "token_missing"
    assert forged.status_code == 401


async def test_admin_bearer_reads_any_session(surface: Surface) -> None:
    kit = FeedbackKit.for_testing(admin_token="admin-secret-token")
    surface = build(surface.name, kit)
    async with client(surface.app) as http:
        ok = await http.get("/feedback/sessions/s9",
                            headers={"Authorization": "Bearer admin-secret-token"})
        wrong = await http.get("/feedback/sessions/s9", headers={"Authorization": "Bearer nope"})
    assert ok.status_code == 200
    assert ok.json() == []
    assert wrong.status_code == 401


async def test_health(kit: FeedbackKit, surface: Surface) -> None:
    async with client(surface.app) as http:
        response = await http.get("/feedback/health")
    assert response.status_code == 200
    # public: one state per part, nothing else
    assert response.json() == {"status": "ok", "database": "ok"}
    admin_kit = FeedbackKit.for_testing(admin_token="admin-secret-token")
    async with client(build(surface.name, admin_kit).app) as http:
        detailed = await http.get("/feedback/health",
                                  headers={"Authorization": "Bearer admin-secret-token"})
    body = detailed.json()
    assert body["healthy"] is True
    assert body["database"]["reachable"] is True


async def test_options_lists_every_method_served_there(surface: Surface) -> None:
    async with client(surface.app) as http:
        answer = await http.options(surface.submit)
        wrong = await http.put(surface.submit, json={})
    assert answer.status_code == 204
    assert {part.strip() for part in answer.headers["allow"].split(",")} == {
        "GET", "HEAD", "POST", "OPTIONS"}
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == answer.headers["allow"]
