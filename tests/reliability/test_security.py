"""Security on PostgreSQL: no secret in any stored column or Redis key, SQL injection strings
stored and queried literally, token rotation and retired keys."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.engine import make_url

from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.integrations.fastapi import feedback_router
from feedback_asgi.kit import FeedbackKit
from feedback_asgi.middleware import FeedbackMiddleware
from tests.endpoint.apps import build, client, error_of

pytestmark = [pytest.mark.postgres]

SECRET = "security-tests-secret-key-0123456789abcdef"
ADMIN = "security-admin-token-0123456789"
SECRETS = {
    "authorization": "s3cret-authorization-value",
    "cookie": "s3cret-cookie-value",
    "set_cookie": "s3cret-set-cookie-value",
    "proxy": "s3cret-proxy-auth-value",
    "password_in": "s3cret-password-in-request",
    "api_key_out": "s3cret-api-key-in-response",
    "token_in_metadata": "s3cret-token-in-feedback-metadata",
    "feedback_auth": "s3cret-feedback-post-authorization",
}


def _app(kit: FeedbackKit) -> FastAPI:
    app = FastAPI()
    app.add_middleware(FeedbackMiddleware, kit=kit, serve_endpoint=False)
    app.include_router(feedback_router(kit), prefix="/feedback")

    @app.post("/answer")
    async def answer(request: Request) -> JSONResponse:
        body = await request.json()
        response = JSONResponse({"answer": f"visible answer to {body['question']}",
                                 "api_key": SECRETS["api_key_out"]})
        response.set_cookie("sid", SECRETS["set_cookie"])
        return response

    return app


@pytest.fixture
async def kit(postgres_url: str, redis_url: str, redis_prefix: str) -> AsyncIterator[FeedbackKit]:
    kit = FeedbackKit(FeedbackConfig(database_url=postgres_url, redis_url=redis_url,
                                     redis_key_prefix=redis_prefix, secret_key=SECRET,
                                     admin_token=ADMIN))
    try:
        yield kit
    finally:
        await kit.shutdown()


async def _all_postgres_text(url: str) -> str:
    parsed = make_url(url)
    conn = await asyncpg.connect(host=parsed.host, port=parsed.port, user="postgres",
                                 database=parsed.database)
    try:
        tables = [r["tablename"] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        dump = []
        for table in tables:
            for record in await conn.fetch(f'SELECT * FROM "{table}"'):
                dump.extend(str(value) for value in record.values())
        return "\n".join(dump)
    finally:
        await conn.close()


async def _all_redis_text(url: str, prefix: str) -> str:
    import redis.asyncio as redis

    client_ = redis.Redis.from_url(url)
    try:
        dump = []
        async for key in client_.scan_iter(match=f"{prefix}*"):
            kind = (await client_.type(key)).decode()
            if kind == "string":
                dump.append(str(await client_.get(key)))
            elif kind == "hash":
                dump.append(str(await client_.hgetall(key)))
            dump.append(key.decode())
        return "\n".join(dump)
    finally:
        await client_.aclose()


@pytest.mark.redis
async def test_no_secret_in_any_stored_column_or_redis_key(
    kit: FeedbackKit, postgres_url: str, redis_url: str, redis_prefix: str
) -> None:
    async with client(_app(kit)) as http:
        answer = await http.post(
            "/answer", json={"question": "what is up?", "password": SECRETS["password_in"]},
            headers={"Authorization": f"Bearer {SECRETS['authorization']}",
                     "Cookie": f"sid={SECRETS['cookie']}",
                     "Proxy-Authorization": f"Basic {SECRETS['proxy']}"},
        )
        assert answer.status_code == 200
        await kit.writer.stop(5)  # the exchange reaches Redis now
        feedback = await http.post(
            "/feedback",
            json={"trace_id": answer.headers["x-trace-id"], "type": "rating", "value": 2,
                  "comment": "visible comment",
                  "metadata": {"token": SECRETS["token_in_metadata"], "page": "visible-page"}},
            headers={"X-Feedback-Token": answer.headers["x-feedback-token"],
                     "Authorization": f"Bearer {SECRETS['feedback_auth']}",
                     "Cookie": f"sid={SECRETS['cookie']}"},
        )
    assert feedback.status_code == 201, feedback.text
    stored = await _all_postgres_text(postgres_url) + await _all_redis_text(redis_url, redis_prefix)
    # the scan sees what was stored: the row, its exchange and both bodies' harmless parts
    for visible in ("visible comment", "visible-page", "what is up?", "visible answer to"):
        assert visible in stored, visible
    for name, secret in SECRETS.items():
        assert secret not in stored, name
    assert "[redacted]" in stored


INJECTIONS = [
    "x' OR '1'='1",
    "'; DROP TABLE ai_feedback; --",
    '" OR ""="',
    "%' --",
    "model\\'); DELETE FROM ai_feedback WHERE ('1'='1",
    "_%",
]


async def test_sql_injection_strings_are_stored_and_queried_literally(kit: FeedbackKit) -> None:
    ids = {}
    for number, text in enumerate(INJECTIONS):
        result = await kit.collector.collect(
            "rating", 3, {"trace_id": f"inj-{number}", "model": text, "session_id": text,
                          "user_id": text, "project": text},
            {"note": text}, comment=text)
        ids[text] = result.unwrap().id
    await kit.collector.collect("rating", 5, {"trace_id": "plain", "model": "plain-model"}, {})
    for text, item_id in ids.items():
        for field in ("model", "session_id", "user_id"):
            found = await kit.store.query(**{field: text})
            assert [item.id for item in found.items] == [item_id], (field, text)
        item = await kit.store.get(item_id)
        assert item is not None
        assert (item.comment, item.metadata["note"], item.context["project"]) == (text, text, text)
    everything = await kit.store.query(limit=100)
    assert len(everything.items) == len(INJECTIONS) + 1
    # and over HTTP, through the listing's filters (admin bearer)
    async with client(build("fastapi", kit).app) as http:
        for text, item_id in ids.items():
            for param in ("model", "session", "user"):
                listed = await http.get("/feedback", params={param: text},
                                        headers={"Authorization": f"Bearer {ADMIN}"})
                assert listed.status_code == 200, listed.text
                assert [i["id"] for i in listed.json()["items"]] == [item_id], (param, text)
            stats = await http.get("/feedback/stats", params={"model": text},
                                   headers={"Authorization": f"Bearer {ADMIN}"})
            assert stats.status_code == 200, stats.text
    assert len((await kit.store.query(limit=100)).items) == len(INJECTIONS) + 1


def _post(kit: FeedbackKit) -> Any:
    return build("endpoint", kit)


@pytest.mark.parametrize(
    ("verifier_keys", "status", "code"),
    [
        pytest.param(["new-key-0123456789abcdef0123456789", "old-key-0123456789abcdef0123456789"],
                     201, None, id="rotated-old-key-still-listed"),
        pytest.param(["new-key-0123456789abcdef0123456789"], 401, "token_unknown_key",
                     id="retired-key"),
    ],
)
async def test_key_rotation(verifier_keys: list[str], status: int, code: str | None) -> None:
    old = FeedbackKit.for_testing(secret_key="old-key-0123456789abcdef0123456789")
    verifier = FeedbackKit.for_testing(secret_key=verifier_keys[0],
                                       previous_secret_keys=verifier_keys[1:])
    token = old.signer.sign("t-rot", "alice")
    async with client(_post(verifier).app) as http:
        response = await http.post("/feedback", json={"trace_id": "t-rot", "type": "thumbs",
                                                      "value": 1},
                                   headers={"X-Feedback-Token": token})
        # new tokens are signed with the new key, which every listed key set accepts
        fresh = verifier.signer.sign("t-new", "alice")
        new = await http.post("/feedback", json={"trace_id": "t-new", "type": "thumbs",
                                                 "value": 1},
                              headers={"X-Feedback-Token": fresh})
        replayed = await http.post("/feedback", json={"trace_id": "t-other", "type": "thumbs",
                                                      "value": 1},
                                   headers={"X-Feedback-Token": fresh})
    assert response.status_code == status, response.text
    if code is not None:
        assert error_of(response)["code"] == code
    assert new.status_code == 201
    assert replayed.status_code == 403
    assert error_of(replayed)["code"] == "token_wrong_trace"
