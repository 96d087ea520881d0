"""Redaction rules: which key names and which values are secrets, in both directions, and
the quick checks that let clean bodies and items skip the walk (never wrongly)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedback_asgi.capture.exchange import CaptureSettings, ExchangeCapture
from feedback_asgi.capture.redaction import (
    REDACTED,
    DroppedHeaders,
    Redactor,
    config_redactor,
    decode_body,
    filter_headers,
)
from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.core.exceptions import ConfigurationError
from feedback_asgi.core.secret_rules import luhn_valid
from feedback_asgi.feedback.collector import FeedbackCollector
from feedback_asgi.storage.memory import MemoryFeedbackStore

RULES = Redactor()

# the reproduction, sentry-python's DEFAULT_DENYLIST and DEFAULT_PII_DENYLIST (its
# EventScrubber scrubs both by default), OWASP's logging cheat sheet, spelled as apps do
SECRET_NAMES = [
    # the issue: JSON keys, form fields, headers
    "access_token", "refresh_token", "client_secret", "apiKey", "passwd", "authorization",
    "private_key", "secret_key", "session_token", "id_token", "X-Auth-Token",
    "X-Access-Token", "Api-Key", "X-Amz-Security-Token", "X-CSRF-Token", "X-Goog-Api-Key",
    "Private-Token", "password", "Password", "PASSWORD", "user_password", "pass_word",
    "pwd", "mysql_pwd", "passphrase", "API Key", "x_api_key", "x-api-key", "apikey",
    "secret", "clientSecret", "aws_secret_access_key", "aws_access_key_id", "token",
    "Token", "authToken", "bearer_token", "access_tokens", "refresh_tokens",
    # sentry: relay's list, django, wsgi, frameworks
    "auth", "credentials", "privatekey", "session", "csrftoken", "sessionid",
    "x_csrftoken", "set_cookie", "cookie", "Set-Cookie", "aiohttp_session", "connect.sid",
    "csrf_token", "csrf", "_csrf", "_csrf_token", "PHPSESSID", "_session", "symfony",
    "user_session", "_xsrf", "XSRF-TOKEN", "x_forwarded_for", "X-Forwarded-For",
    "x_real_ip", "X-Real-IP", "ip_address", "remote_addr",
    # OWASP: session ids, access tokens, passwords, connection strings, keys, card data
    "JSESSIONID", "sid", "oauth_token", "authenticity_token", "Authorisation",
    "proxy-authorization", "x-hub-signature-256", "signature", "sig", "jwt",
    "connection_string", "encryption_key", "signing_key", "credit_card", "card_number",
    "cvv", "cvc", "iban", "db credential", "x-feedback-token",
]
KEPT_NAMES = [
    # LLM usage counters and settings
    "max_tokens", "prompt_tokens", "completion_tokens", "total_tokens", "input_tokens",
    "output_tokens", "tokens", "token_count", "num_tokens", "max_new_tokens",
    "max_completion_tokens", "cached_tokens", "reasoning_tokens", "budget_tokens",
    "cache_read_input_tokens", "prompt_tokens_details", "tokens_per_second", "tokenizer",
    "tokenization", "token_type", "token_usage", "token_limit", "prompt_token_ids",
    # auth... that is not auth
    "author", "authors", "authority", "authored_by", "Author-Name",
    # ordinary names near the needles
    "model", "messages", "role", "content", "temperature", "user", "session_count",
    "sessions", "passenger", "bypass", "compass", "key", "keyboard", "monkey", "inside",
    "signal", "design", "idempotency_key", "trace_id", "request_id", "x-request-id",
    "user-agent", "accept", "content-type", "referer", "origin", "host", "page",
    "description", "region",
]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_secret_names_match_whatever_their_spelling(name: str) -> None:
    assert RULES.is_secret_name(name)
    assert RULES.redact_value({name: "v4lue", "n": 1}) == {name: REDACTED, "n": 1}


@pytest.mark.parametrize("name", KEPT_NAMES)
def test_ordinary_names_and_llm_counters_are_kept(name: str) -> None:
    assert not RULES.is_secret_name(name)
    assert RULES.redact_value({name: 512, "x": [name]}) == {name: 512, "x": [name]}


def test_a_logprobs_token_is_output_text_not_a_credential() -> None:
    logprobs = {"content": [{"token": "Hello", "logprob": -0.01, "top_logprobs": [
        {"token": "Hi", "logprob": -4.2}]}]}
    assert RULES.redact_value(logprobs) == logprobs
    assert RULES.redact_value({"token": "abc", "kind": "x"}) == {"token": REDACTED, "kind": "x"}


def test_exempt_names_and_extra_fields() -> None:
    rules = Redactor(["SSN", "employee-id", "token"], exempt=["Session-ID", "X-Real-IP"])
    assert rules.is_secret_name("user_ssn")
    assert rules.is_secret_name("EmployeeID")
    assert not rules.is_secret_name("session_id")
    assert not rules.is_secret_name("x_real_ip")
    assert rules.is_secret_name("session_ids")  # exemptions are whole names
    # an extra "token" leaves the built-in rule in charge: counters stay
    assert not rules.is_secret_name("max_tokens")
    assert rules.redact_value({"session_id": "s-1", "ssn": "123-45-6789"}) == {
        "session_id": "s-1", "ssn": REDACTED}


# keys in every shape of text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("user=ann&password=hunter2&page=2", f"user=ann&password={REDACTED}&page=2"),
        ("grant_type=x&access_token=abc.def&x=1", f"grant_type=x&access_token={REDACTED}&x=1"),
        ("api%5Fkey=abc123&q=1", f"api%5Fkey={REDACTED}&q=1"),
        ("api+key=abc123&q=1", f"api+key={REDACTED}&q=1"),
        ("https://x.example/cb?code=1&client_secret=s3c&state=2",
         f"https://x.example/cb?code=1&client_secret={REDACTED}&state=2"),
        # a "#" may be part of a password: the value runs on (over a URL's fragment)
        ("https://x.example/cb#access_token=t0k&state=2",
         f"https://x.example/cb#access_token={REDACTED}&state=2"),
        ("password=ab#cd&x=1", f"password={REDACTED}&x=1"),
        ('{"apiKey": "k-123", "n": 1}', f'{{"apiKey": "{REDACTED}", "n": 1}}'),
        ('{"passwd":12345,"n":1}', f'{{"passwd":"{REDACTED}","n":1}}'),
        ('{"note": "{\\"password\\": \\"hunter2\\"}"}',
         f'{{"note": "{{\\"password\\": \\"{REDACTED}\\"}}"}}'),
        ("my password: hunter2, thanks", f"my password: {REDACTED}, thanks"),
        ("the api key: abc-123 broke", f"the api key: {REDACTED} broke"),
        ("Authorization: Basic dXNlcjpwYXNz", f"Authorization: {REDACTED}"),
        ("{'client_secret': 'x1'}", f"{{'client_secret': '{REDACTED}'}}"),
        ('{"max_tokens": 512, "author": "Ann"}', '{"max_tokens": 512, "author": "Ann"}'),
        ("ratio: 3:1, note=fine", "ratio: 3:1, note=fine"),
    ],
)
def test_key_value_fragments_in_text(text: str, expected: str) -> None:
    assert RULES.redact_text(text) == expected


# values, whatever their key

CAUGHT_VALUES = [
    ("Bearer sk3cr3tbearer0123", "sk3cr3tbearer0123"),
    ("auth with bearer abcdefghijklmnopqrstuvwxyz please", "abcdefghijklmnopqrstuvwxyz"),
    ("header Basic dXNlcjpzM2NyM3Q=", "dXNlcjpzM2NyM3Q="),
    ("id eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl end",
     "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl"),
    ("key AKIAIOSFODNN7EXAMPLE in logs", "AKIAIOSFODNN7EXAMPLE"),
    ("temp ASIAY34FZKBOKMUTVV7A creds", "ASIAY34FZKBOKMUTVV7A"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7s3cr3t\n-----END RSA PRIVATE KEY-----",
     "MIIEpAIBAAKCAQEA7s3cr3t"),
    ("cut: -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE", "b3BlbnNzaC1rZXktdjE"),
    ("card 4111 1111 1111 1111 exp", "4111 1111 1111 1111"),
    ("card 4111-1111-1111-1111 exp", "4111-1111-1111-1111"),
    ("card 5500005555555559.", "5500005555555559"),
    ("amex 3782 822463 10005 ok", "822463"),
    ("db postgresql://app:s3cr3t-pw@db.internal:5432/app", "s3cr3t-pw"),
    ("openai sk-proj-AbCdEfGhIjKlMnOpQrStUv0123456789", "sk-proj-AbCdEfGhIjKlMnOpQrStUv0123456789"),
    ("anthropic sk-ant-api03-AbCdEfGhIjKlMnOpQrSt", "sk-ant-api03-AbCdEfGhIjKlMnOpQrSt"),
    ("gh ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"),
    ("google AIzaSyA1234567890abcdefghijklmnopqrstuv", "AIzaSyA1234567890abcdefghijklmnopqrstuv"),
    ("slack xoxb-123456789012-abcdefghij", "xoxb-123456789012-abcdefghij"),
    ("stripe sk_live_AbCdEfGhIjKlMnOpQrSt", "sk_live_AbCdEfGhIjKlMnOpQrSt"),
]
KEPT_VALUES = [
    "bearer bonds and the bearer of bad news",
    "a basic idea, Basic English, basic training",
    "hey Jude, eyJ alone is nothing",
    "the AKIA prefix alone; Asia is large; ASIA",
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----",
    "order 4111111111111112 fails Luhn",  # 16 digits, not a card
    "timestamp 1700000000000 ms and 1234567812345670",  # Luhn passes, no card network
    "on 2024-03-15T10:20:30Z and 2024-03-15",
    "uuid 123e4567-e89b-12d3-a456-426614174000",
    "trace 4bf92f3577b34da6a3ce929d0e0e4736 and 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "pi 3.14159265358979323 and 0.1234567890123456",
    "call +1 415 555 0100 or 555-0100",
    "see https://example.com/@ann and mailto:ann@example.com",
    "https://docs.example.com/path?q=tokens&page=2",
    "max_tokens=512 prompt_tokens: 20 author: Ann",
]


@pytest.mark.parametrize(("text", "secret"), CAUGHT_VALUES)
def test_value_patterns_catch_secrets_anywhere(text: str, secret: str) -> None:
    for where in (RULES.redact_text(text), RULES.redact_value({"note": text})["note"],
                  RULES.redact_value([text])[0]):
        assert secret not in where
        assert REDACTED in where


@pytest.mark.parametrize("text", KEPT_VALUES)
def test_value_patterns_leave_prose_ids_dates_and_numbers(text: str) -> None:
    assert RULES.redact_text(text) == text
    assert RULES.is_clean_value({"note": text}) or RULES.redact_value({"note": text}) == {
        "note": text}


def test_bearer_and_basic_keep_the_scheme_and_a_url_keeps_its_user() -> None:
    assert RULES.redact_text("Bearer abc123def456") == f"Bearer {REDACTED}"
    assert RULES.redact_text("Basic dXNlcjpwYXNz") == f"Basic {REDACTED}"
    assert RULES.redact_text("redis://app:pw1234@cache:6379/0") == (
        f"redis://app:{REDACTED}@cache:6379/0")


def test_card_numbers_as_json_integers() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    value = {"paid_with": 4111111111111111, "order": 4111111111111112, "ts": 1700000000000}
    assert RULES.redact_value(value) == {"paid_with": REDACTED, "order": 4111111111111112,
                                         "ts": 1700000000000}
    assert not RULES.is_clean(json.dumps(value).encode())
    assert not RULES.is_clean_value(value)


def test_extra_patterns_from_the_configuration() -> None:
    config = FeedbackConfig(redact_patterns=[r"EMP-\d{6}", r"x*"], redact_fields=["ssn"],
                            redact_exempt_fields=["sid"])
    rules = config_redactor(config)
    assert rules is config_redactor(FeedbackConfig(
        redact_patterns=[r"EMP-\d{6}", r"x*"], redact_fields=["SSN"], redact_exempt_fields=["SID"]))
    # an extra pattern that can match nothing writes nothing between letters
    assert rules.redact_text("badge EMP-123456 ok") == f"badge {REDACTED} ok"
    assert rules.redact_value({"ssn": "1", "sid": "s", "n": "EMP-000001"}) == {
        "ssn": REDACTED, "sid": "s", "n": REDACTED}
    # any pattern can match anything: nothing is known clean without the walk
    assert not rules.is_clean(b'{"a": 1}')
    assert not rules.is_clean_value({"a": 1})


@pytest.mark.parametrize("pattern", ["(unclosed", "[z-a]", "*x"])
def test_a_bad_extra_pattern_is_a_configuration_error(pattern: str) -> None:
    with pytest.raises(ConfigurationError, match=r"redact_patterns \(FEEDBACK_ASGI_REDACT_PATTERNS\)"):
        FeedbackConfig(redact_patterns=[pattern])


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEEDBACK_ASGI_REDACT_FIELDS", '["customer_ref"]')
    monkeypatch.setenv("FEEDBACK_ASGI_REDACT_EXEMPT_FIELDS", '["session_id"]')
    monkeypatch.setenv("FEEDBACK_ASGI_REDACT_PATTERNS", '["ORD-[0-9]+"]')
    rules = config_redactor(FeedbackConfig())
    assert rules.redact_value({"customer_ref": "c", "session_id": "s", "n": "ORD-42"}) == {
        "customer_ref": REDACTED, "session_id": "s", "n": REDACTED}


# headers


def test_header_names_are_dropped_by_the_rule_in_any_case() -> None:
    dropped = DroppedHeaders([b"x-internal"], RULES)
    for name in (b"x-auth-token", b"X-Access-Token", b"api-key", b"x-amz-security-token",
                 b"x-csrf-token", b"X-Goog-Api-Key", b"private-token", b"authorization",
                 b"cookie", b"x-session-id", b"x-forwarded-for", b"x-internal", b"X-Internal"):
        assert name in dropped, name
    for name in (b"accept", b"referer", b"origin", b"user-agent", b"x-request-id",
                 b"traceparent", b"content-type", b"x-author"):
        assert name not in dropped, name
    clean = [(b"accept", b"*/*"), (b"user-agent", b"ua")]
    assert dropped.keeps_all(clean)
    assert dropped.keeps_all(clean)  # and again, from the cache
    assert not dropped.keeps_all([*clean, (b"X-Auth-Token", b"t")])
    assert not dropped.keeps_all([(b"X-Auth-Token", b"t"), *clean])
    assert dropped.keeps_all([])


def test_header_values_that_are_urls_lose_every_query_parameter() -> None:
    assert RULES.redact_header_value("https://app.example/chat?token=t0k&page=2#state=s") == (
        f"https://app.example/chat?token={REDACTED}&page={REDACTED}#state={REDACTED}")
    assert RULES.redact_header_value("/internal/cb?code=abc") == f"/internal/cb?code={REDACTED}"
    assert RULES.redact_header_value("https://app.example") == "https://app.example"
    assert RULES.redact_header_value("text/html;q=0.9") == "text/html;q=0.9"
    assert RULES.redact_header_value("Bearer abc123def456") == f"Bearer {REDACTED}"
    headers = [(b"Referer", b"https://a.example/p?token=t0k"), (b"X-Auth-Token", b"t0k"),
               (b"accept", b"a"), (b"Accept", b"b")]
    assert filter_headers(headers) == {"referer": f"https://a.example/p?token={REDACTED}",
                                       "accept": "a, b"}


def test_captured_headers_go_through_the_rule_and_the_value_redaction() -> None:
    rules = CaptureSettings.from_config(FeedbackConfig(redact_headers=["X-Internal"]))
    capture = ExchangeCapture("t", rules)
    capture.request_headers = [
        (b"X-Auth-Token", b"s3cret-1"), (b"Api-Key", b"s3cret-2"), (b"Private-Token", b"s3cret-3"),
        (b"X-Internal", b"s3cret-4"), (b"referer", b"https://app.example/c?token=s3cret-5"),
        (b"x-original-url", b"/cb?code=s3cret-6"), (b"x-visible", b"visible"),
    ]
    capture.headers_clean = rules.dropped_headers.keeps_all(capture.request_headers)
    assert not capture.headers_clean
    headers = capture.to_exchange().metadata["request_headers"]
    assert headers == {"referer": f"https://app.example/c?token={REDACTED}",
                       "x-original-url": f"/cb?code={REDACTED}", "x-visible": "visible"}


# the quick checks never call something clean that the walk would change

WORDS = st.sampled_from([
    "token", "tokens", "max_tokens", "access_token", "Token", "auth", "author", "authority",
    "authorize", "oauth", "password", "pass word", "pass-word", "passage", "key", "api key",
    "apiKey", "api%5Fkey", "secret", "sid", "inside", "sig", "design", "session", "sessions",
    "sessionid", "Bearer", "Bearer abc123def456", "bearer bonds", "Basic dXNlcjpwYXNz",
    "basic", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", "eyJ", "AKIAIOSFODNN7EXAMPLE",
    "AKIA", "Asia", "4111 1111 1111 1111", "4111111111111112", "1700000000000",
    "postgres://u:pw@h", "https://a.example/@x", "-----BEGIN PRIVATE KEY-----", "x=1",
    "token=abc", "token: 1", '"secret": "s"', "q?password=p", "=", ":", "%", "\\u0074",
    "é", "\u017fecret", "\u212a", "tokenizer", "token_type", "logprob", "cookie", "csrf", "", "1",
])
TEXT = st.lists(WORDS, max_size=5).map(" ".join) | st.lists(WORDS, max_size=3).map("".join)
JSON: Any = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-10**19, max_value=10**19)
    | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(value=JSON, ascii_only=st.booleans())
def test_a_clean_body_or_value_has_nothing_to_redact(value: Any, ascii_only: bool) -> None:
    body = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    walked = RULES.redact_value(value)
    if RULES.is_clean(body):
        assert walked == value
        assert RULES.redact_text(body.decode("utf-8", "surrogatepass")) == body.decode(
            "utf-8", "surrogatepass")
    if RULES.is_clean_value(value):
        assert walked == value


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXT)
def test_a_clean_form_or_text_body_has_nothing_to_redact(text: str) -> None:
    body = text.encode("utf-8", "surrogatepass")
    if text and RULES.is_clean(body):
        value, _ = decode_body(body, content_type="application/x-www-form-urlencoded",
                               content_encoding=None, truncated=False, redactor=RULES)
        assert value == text
        assert RULES.redact_text(text) == text


def test_typical_llm_bodies_are_clean_so_the_walk_is_skipped() -> None:
    request = {"model": "gpt-4o-mini", "max_tokens": 512, "temperature": 0.2, "stream": True,
               "messages": [{"role": "user", "content": "Summarise the author's argument."}],
               "metadata": {"conversation_id": "123e4567-e89b-12d3-a456-426614174000"}}
    response = {"id": "chatcmpl-9", "created": 1700000000, "model": "gpt-4o-mini",
                "choices": [{"index": 0, "finish_reason": "stop", "message": {
                    "role": "assistant", "content": "The author argues that..."}}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42,
                          "prompt_tokens_details": {"cached_tokens": 0}}}
    for value in (request, response):
        assert RULES.is_clean(json.dumps(value).encode())
        assert RULES.is_clean_value(value)
    assert RULES.is_clean(b"")
    assert not RULES.is_clean(b'{"access_token": "x"}')
    assert not RULES.is_clean(b'{"a": "\\u0070assword"}')  # an escape can spell a secret


# feedback items: redacted where they are built, on every path


async def test_the_collector_redacts_every_kind_of_item() -> None:
    collector = FeedbackCollector(MemoryFeedbackStore(), config=FeedbackConfig())
    meta = {"comment": "my password=hunter2 ok", "apiKey": "k-1", "page": "/chat"}
    rating = await collector.collect("rating", 4, {"trace_id": "t"}, meta)
    assert rating.unwrap().metadata == {"comment": f"my password={REDACTED} ok",
                                        "apiKey": REDACTED, "page": "/chat"}
    text_id = await collector.collect_text("reach me with Bearer abc123def456", {"trace_id": "t"})
    correction_id = await collector.collect_correction(
        "old", "use AKIAIOSFODNN7EXAMPLE now", {"trace_id": "t"})
    label_id = await collector.collect_label(
        {"name": "card 4111 1111 1111 1111"}, {"client_secret": "s", "q": "visible"},
        {"trace_id": "t"})
    stored = {item.id: item for item in await collector.get_feedback()}
    assert stored[text_id].value == f"reach me with Bearer {REDACTED}"
    assert stored[correction_id].value == {"original": "old", "corrected": f"use {REDACTED} now"}
    assert stored[label_id].value == {"label": {"name": f"card {REDACTED}"},
                                      "input": {"client_secret": REDACTED, "q": "visible"}}


def test_a_clean_item_is_kept_as_it_is_without_a_walk() -> None:
    collector = FeedbackCollector(MemoryFeedbackStore(), config=FeedbackConfig())
    meta = {"comment": "Great answer, thanks", "page": "/chat", "prompt_tokens": 12}
    value, kept = collector._redacted(4, meta)
    assert value == 4
    assert kept is meta  # the walk would have returned a copy
    _, copied = collector._redacted(4, {"token": "t"})
    assert copied == {"token": REDACTED}


async def test_the_middleware_drops_secret_headers_before_the_capture_is_kept() -> None:
    from feedback_asgi.kit import FeedbackKit
    from feedback_asgi.middleware import FeedbackMiddleware
    from feedback_asgi.storage.memory import MemoryExchangeStore
    from tests.asgi.harness import Receiver, Sender, http_scope, request

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    kit = FeedbackKit(FeedbackKit.for_testing().config, store=MemoryFeedbackStore(),
                      exchanges=MemoryExchangeStore())
    middleware = FeedbackMiddleware(app, kit=kit)
    secret = [(b"x-auth-token", b"s3cret-1"), (b"X-Goog-Api-Key", b"s3cret-2"),
              (b"referer", b"https://app.example/c?token=s3cret-3")]
    for headers in ([(b"accept", b"*/*")], [(b"accept", b"*/*"), *secret]):
        sender = Sender()
        await middleware(http_scope("POST", "/chat", headers=headers), Receiver(*request()), sender)
    entries = [entry for _, entry in kit.exchanges._entries.values()]  # type: ignore[attr-defined]
    assert len(entries) == 2
    # dropped before the capture is kept in memory; the Referer's query waits for the first read
    assert all(b"s3cret-1" not in repr(entry).encode() for entry in entries)
    assert all(b"s3cret-2" not in repr(entry).encode() for entry in entries)
    exchange = await kit.exchanges.get(dict(sender.start["headers"])[b"x-trace-id"].decode())
    assert exchange is not None
    assert exchange.metadata["request_headers"] == {
        "accept": "*/*", "referer": f"https://app.example/c?token={REDACTED}"}
    await kit.shutdown()
