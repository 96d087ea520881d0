"""The secrets real apps send, as an attacker reading what was stored would look for them.

A FastAPI app with ``FeedbackMiddleware`` on PostgreSQL, exchanges through Redis: requests
carry credentials in JSON and form bodies, query strings, headers and a ``Referer``; the
response is an OAuth token response; the feedback (every kind, then an edit) carries them
in comments, corrections, labels and metadata. The list route, the finetune export and a
dump of every PostgreSQL column and Redis key hold none of them, and the harmless parts
next to them (so a scan that saw nothing could not pass).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.integrations.fastapi import feedback_router
from feedback_asgi.kit import FeedbackKit
from feedback_asgi.middleware import FeedbackMiddleware
from tests.endpoint.apps import client
from tests.reliability.test_security import _all_postgres_text, _all_redis_text

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

ADMIN = "redaction-admin-token-0123456789"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzM2tyMXQtand0In0.s3kr1tJwtSignature0123"
PEM = ("-----BEGIN RSA PRIVATE KEY-----\nMIIEs3kr1tPemBody0123456789abcdef\n"
       "-----END RSA PRIVATE KEY-----")

# every value here must be gone from every place it could be stored or shown
SECRETS = {
    # JSON keys (request body)
    "access_token": "s3kr1t-access-token-01", "refresh_token": "s3kr1t-refresh-token-02",
    "client_secret": "s3kr1t-client-secret-03", "apiKey": "s3kr1t-api-key-04",
    "passwd": "s3kr1t-passwd-05", "authorization": "s3kr1t-authorization-06",
    "private_key": "s3kr1t-private-key-07", "secret_key": "s3kr1t-secret-key-08",
    "session_token": "s3kr1t-session-token-09",
    # headers
    "X-Auth-Token": "s3kr1t-x-auth-token-10", "X-Access-Token": "s3kr1t-x-access-token-11",
    "Api-Key": "s3kr1t-api-key-header-12", "X-Amz-Security-Token": "s3kr1t-amz-token-13",
    "X-CSRF-Token": "s3kr1t-csrf-token-14", "X-Goog-Api-Key": "s3kr1t-goog-key-15",
    "Private-Token": "s3kr1t-private-token-16", "Authorization": "s3kr1t-bearer-header-17",
    "Cookie": "s3kr1t-cookie-18",
    # URLs and forms
    "referer_token": "s3kr1t-referer-token-19", "original_url_code": "s3kr1t-oauth-code-20",
    "query_token": "s3kr1t-query-token-21", "form_password": "s3kr1t-form-password-22",
    "form_access_token": "s3kr1t-form-access-token-23",
    "multipart_password": "s3kr1t-multipart-password-24",
    # the OAuth token response
    "oauth_access": "s3kr1t-oauth-access-25", "oauth_refresh": "s3kr1t-oauth-refresh-26",
    # values found by their shape, wherever they are
    "bearer": "s3kr1tBearerValue0123456789", "jwt": JWT, "aws": "AKIAS3KR1TEXAMPLE027",
    "pem": "MIIEs3kr1tPemBody0123456789abcdef", "card": "4111 1111 1111 1111",
    "card_digits": "4111111111111111", "url_password": "s3kr1t-db-password-28",
    "fragment_password": "s3kr1t-fragment-pw-29",
    # in the feedback
    "comment_password": "s3kr1t-comment-pw-30", "metadata_key": "s3kr1t-metadata-key-31",
    "correction_token": "s3kr1t-correction-token-32", "label_secret": "s3kr1t-label-secret-33",
    "text_password": "s3kr1t-text-pw-34", "edit_password": "s3kr1t-edit-pw-35",
    "metadata_card": "5500 0055 5555 5559",
}
# next to them, what must be kept (counters, authors, ids, dates, a non-card number): in
# the feedback rows (which hold the rated exchange's input and output)...
HARMLESS = ("visible-topic", "visible-author", "max_tokens", "prompt_tokens", "token_type",
            "4111111111111112", "2024-03-15T10:20:30Z", "123e4567-e89b-12d3-a456-426614174000",
            "4bf92f3577b34da6a3ce929d0e0e4736", "visible answer", "visible comment",
            "visible-page", "visible correction", "visible-label", "visible text",
            "visible edit")
# ... and in the exchanges (which also hold request headers and every request's body)
HARMLESS_EXCHANGES = ("visible-topic", "visible-author", "max_tokens", "prompt_tokens",
                      "token_type", "4111111111111112", "visible answer",
                      "visible-header-value", "https://app.example/chat", "visible-user")


def _app(kit: FeedbackKit) -> FastAPI:
    app = FastAPI()
    app.add_middleware(FeedbackMiddleware, kit=kit, serve_endpoint=False)
    app.include_router(feedback_router(kit), prefix="/feedback")

    @app.post("/answer")
    async def answer(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({
            "result": "visible answer",
            # an OAuth token response, as a proxy to an identity provider returns it
            "access_token": SECRETS["oauth_access"], "token_type": "Bearer", "expires_in": 3600,
            "refresh_token": SECRETS["oauth_refresh"], "id_token": JWT, "scope": "openid",
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
        })

    @app.post("/login")
    async def login(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({"ok": True})

    @app.get("/search")
    async def search() -> JSONResponse:
        return JSONResponse({"hits": []})

    return app


@pytest.fixture
async def kit(postgres_url: str, redis_url: str, redis_prefix: str) -> AsyncIterator[FeedbackKit]:
    kit = FeedbackKit(FeedbackConfig(database_url=postgres_url, redis_url=redis_url,
                                     redis_key_prefix=redis_prefix, secret_key="r" * 40,
                                     admin_token=ADMIN))
    try:
        yield kit
    finally:
        await kit.shutdown()


def _request_body() -> dict[str, Any]:
    keys = ("access_token", "refresh_token", "client_secret", "apiKey", "passwd",
            "authorization", "private_key", "secret_key", "session_token")
    return {
        "topic": "visible-topic", "author": "visible-author", "max_tokens": 777,
        **{key: SECRETS[key] for key in keys},
        "notes": [
            f"call it with Bearer {SECRETS['bearer']}",
            f"id {JWT} and key {SECRETS['aws']}",
            PEM,
            f"paid with {SECRETS['card']}, order 4111111111111112 on 2024-03-15T10:20:30Z",
            f"db postgresql://app:{SECRETS['url_password']}@db.internal/app",
            f"login with password={SECRETS['fragment_password']} please",
        ],
        "card_number_as_int": int(SECRETS["card_digits"]),
        "conversation": "123e4567-e89b-12d3-a456-426614174000",
        "trace": "4bf92f3577b34da6a3ce929d0e0e4736",
    }


def _headers() -> dict[str, str]:
    names = ("X-Auth-Token", "X-Access-Token", "Api-Key", "X-Amz-Security-Token",
             "X-CSRF-Token", "X-Goog-Api-Key", "Private-Token")
    return {
        **{name: SECRETS[name] for name in names},
        "Authorization": f"Bearer {SECRETS['Authorization']}",
        "Cookie": f"connect.sid={SECRETS['Cookie']}",
        "Referer": f"https://app.example/chat?token={SECRETS['referer_token']}&tab=2",
        "X-Original-URL": f"/oauth/callback?code={SECRETS['original_url_code']}",
        "X-Visible": "visible-header-value",
    }


async def _captured_then_rated(http: Any, kit: FeedbackKit) -> str:
    """Send the requests, then every kind of feedback on the answer; the rating's id."""
    answer = await http.post("/answer", json=_request_body(), headers=_headers())
    assert answer.status_code == 200
    form = await http.post("/login", headers=_headers(), data={
        "username": "visible-user", "password": SECRETS["form_password"],
        "access_token": SECRETS["form_access_token"]})
    assert form.status_code == 200
    multipart = await http.post("/login", files={"upload": ("a.txt", b"x")},
                                data={"password": SECRETS["multipart_password"]})
    assert multipart.status_code == 200
    query = await http.get(f"/search?q=x&access_token={SECRETS['query_token']}",
                           headers=_headers())
    assert query.status_code == 200
    await kit.writer.stop(5)  # the exchanges reach Redis now
    trace_id = answer.headers["x-trace-id"]
    token = {"X-Feedback-Token": answer.headers["x-feedback-token"]}
    posts: list[dict[str, Any]] = [
        {"type": "rating", "value": 5,
         "comment": f"visible comment; my password={SECRETS['comment_password']}, "
                    f"card {SECRETS['metadata_card']}, Bearer {SECRETS['bearer']}",
         "metadata": {"page": "visible-page", "x-api-key": SECRETS["metadata_key"],
                      "paid_with": SECRETS["metadata_card"], "prompt_tokens": 3}},
        {"type": "correction", "value": {
            "original": "visible answer",
            "corrected": f"visible correction, use access_token={SECRETS['correction_token']}"}},
        {"type": "label", "value": {"label": "visible-label",
                                    "input": {"client_secret": SECRETS["label_secret"]}}},
        {"type": "text", "value": f"visible text, password: {SECRETS['text_password']}"},
    ]
    ids = []
    for post in posts:
        response = await http.post("/feedback", json={"trace_id": trace_id, **post},
                                   headers=token)
        assert response.status_code == 201, response.text
        ids.append(response.json()["feedback_id"])
    edit = await http.patch(f"/feedback/{ids[0]}", headers=token, json={
        "comment": f"visible edit, passwd={SECRETS['edit_password']}"})
    assert edit.status_code == 200, edit.text
    return str(ids[0])


def _assert_redacted(where: str, text: str, *, harmless: tuple[str, ...]) -> None:
    leaked = [name for name, secret in SECRETS.items() if secret in text]
    assert not leaked, f"{where} holds {leaked}"
    missing = [part for part in harmless if part not in text]
    assert not missing, f"{where} lost {missing}"
    assert "[redacted]" in text, where


async def test_no_secret_real_apps_send_is_stored_listed_or_exported(
    kit: FeedbackKit, postgres_url: str, redis_url: str, redis_prefix: str
) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    async with client(_app(kit)) as http:
        await _captured_then_rated(http, kit)
        listed = await http.get("/feedback?limit=50", headers=admin)
        exported = await http.post("/feedback/export/finetune", headers=admin)
    assert listed.status_code == 200, listed.text
    assert exported.status_code == 200, exported.text
    assert len(listed.json()["items"]) == 4
    stored = await _all_postgres_text(postgres_url)
    exchanges = await _all_redis_text(redis_url, redis_prefix)
    _assert_redacted("PostgreSQL", stored, harmless=HARMLESS)
    _assert_redacted("Redis", exchanges, harmless=HARMLESS_EXCHANGES)
    # the list shows live versions: the rating's edited comment, not its first one
    _assert_redacted("the list route", listed.text, harmless=(
        "visible-page", "visible correction", "visible-label",
        "visible text", "visible edit", "visible-topic", "visible-author"))
    _assert_redacted("the finetune export", exported.text, harmless=(
        "visible-topic", "visible-author", "visible correction", "visible edit"))
