"""The pure capture core: rules, ids, tee, SSE parsing, redaction, exchange building."""

from __future__ import annotations

import asyncio
import gzip
import json
import uuid

import pytest

from feedback_asgi.capture.exchange import (
    BodyTee,
    CaptureSettings,
    ExchangeCapture,
    new_trace_id,
    session_subject,
    trace_id_from_traceparent,
    valid_id,
)
from feedback_asgi.capture.redaction import REDACTED, Redactor, decode_body, filter_headers
from feedback_asgi.capture.sse import SSEDataParser, format_sse_event
from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.core.tokens import TokenSigner


def settings(**values: object) -> CaptureSettings:
    return CaptureSettings.from_config(FeedbackConfig(**values))


# rules and ids


def test_rules_exclude_feedback_path_static_health_and_methods() -> None:
    rules = settings()
    assert rules.should_capture("POST", "/chat")
    assert not rules.should_capture("POST", "/feedback")
    assert not rules.should_capture("GET", "/feedback/health")
    assert rules.should_capture("GET", "/feedbackx")
    assert not rules.should_capture("GET", "/static/app.js")
    assert not rules.should_capture("GET", "/healthz")
    assert not rules.should_capture("OPTIONS", "/chat")
    only_api = settings(capture_include=["/api/*"], capture_exclude=["/api/private*"])
    assert only_api.should_capture("GET", "/api/chat")
    assert not only_api.should_capture("GET", "/other")
    assert not only_api.should_capture("GET", "/api/private/x")


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (b"abc-123_X.y", True),
        (b"a" * 64, True),
        (b"a" * 65, False),
        (b"", False),
        (b"abc\r\nX-Evil: 1", False),
        ("caf\u00e9".encode(), False),
        (b"a b", False),
    ],
)
def test_incoming_ids_are_validated(value: bytes, ok: bool) -> None:
    assert valid_id(value) is ok


def test_traceparent_and_new_ids() -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace_id_from_traceparent(f"00-{trace}-00f067aa0ba902b7-01".encode()) == trace
    assert trace_id_from_traceparent(b"00-" + b"0" * 32 + b"-00f067aa0ba902b7-01") is None
    assert trace_id_from_traceparent(b"ff-" + trace.encode() + b"-00f067aa0ba902b7-01") is None
    assert trace_id_from_traceparent(b"nonsense") is None
    ids = {new_trace_id() for _ in range(600)}  # past two refills of the pool
    assert len(ids) == 600
    assert {(uuid.UUID(i).version, uuid.UUID(i).variant) for i in ids} == {(4, uuid.RFC_4122)}
    for value in ids:
        assert len(value) == 32
        assert value[12] == "4"
        assert value[16] in "89ab"


# tee


def test_tee_keeps_limit_and_counts_everything() -> None:
    tee = BodyTee(10)
    for chunk in (b"abcd", bytearray(b"efgh"), b"ijklmnop", b"qrs"):
        tee.add(chunk)
    assert tee.data() == b"abcdefghij"
    assert tee.total == 19
    assert tee.truncated
    assert all(type(chunk) is bytes for chunk in tee.chunks)
    exact = BodyTee(4)
    exact.add(b"abcd")
    assert not exact.truncated
    assert exact.data() == b"abcd"


# SSE


def feed_all(chunks: list[bytes], limit: int = 1000) -> SSEDataParser:
    parser = SSEDataParser(limit)
    for chunk in chunks:
        parser.feed(chunk)
    parser.close()
    return parser


def test_sse_data_payloads_concatenated() -> None:
    stream = b": comment\nevent: token\ndata: Hello\n\nid: 2\ndata:  world\n\nretry: 5\n\n"
    parser = feed_all([stream])
    assert parser.data() == b"Hello world"
    assert parser.events == 2
    assert parser.total == len(stream)


def test_sse_lines_split_across_chunks_and_crlf() -> None:
    stream = b"data: first\r\n\r\ndata: sec" + b"ond\r\ndata: line2\r\n\r\ndata: x\rdata: y\r\r"
    whole = feed_all([stream]).data()
    assert whole == b"firstsecond\nline2x\ny"
    for cut in range(1, len(stream)):
        assert feed_all([stream[:cut], stream[cut:]]).data() == whole, cut
    bytewise = feed_all([stream[i : i + 1] for i in range(len(stream))])
    assert bytewise.data() == whole


def test_sse_bounded_payload_and_carry() -> None:
    parser = feed_all([b"data: " + b"x" * 50 + b"\n\n", b"data: more\n\n"], limit=20)
    assert parser.data() == b"x" * 20
    assert parser.truncated
    # one endless line: the carried part stays bounded and the payload is cut at the limit
    parser = SSEDataParser(16)
    parser.feed(b"data: ")
    for _ in range(100):
        parser.feed(b"y" * 100)
        assert len(parser._carry) <= 16 + 8 + 100
    parser.feed(b"\n\ndata: z\n\n")
    parser.close()
    assert parser.data().startswith(b"y")
    assert len(parser.data()) <= 16
    assert parser.truncated


def test_sse_overlong_comment_is_skipped() -> None:
    parser = feed_all([b":" + b"c" * 100, b"c" * 100 + b"\ndata: ok\n\n"], limit=32)
    assert parser.data() == b"ok"


def test_format_sse_event() -> None:
    assert format_sse_event("feedback", '{"a": 1}') == b'event: feedback\ndata: {"a": 1}\n\n'


# redaction


def test_json_fields_redacted_at_any_depth_case_insensitively() -> None:
    redactor = Redactor(["password", "api_key"])
    value = {"user": "bob", "Password": "hunter2", "nested": [{"API_KEY": 1}, ("ok", 2)]}
    assert redactor.redact_value(value) == {
        "user": "bob",
        "Password": REDACTED,
        "nested": [{"API_KEY": REDACTED}, ["ok", 2]],
    }
    assert value["Password"] == "hunter2"  # the caller's object is untouched


def test_text_redaction_of_json_fragments_and_forms() -> None:
    redactor = Redactor(["password", "token"])
    truncated = '{"user": "a", "password": "hunt'
    assert "hunt" not in redactor.redact_text(truncated)
    assert "hunter2" not in redactor.redact_text('x {"password":"hunter2"} y')
    assert redactor.redact_text('{"token": 12345, "n": 1}') == f'{{"token": "{REDACTED}", "n": 1}}'
    assert redactor.redact_text("user=a&password=hunter2&x=1") == f"user=a&password={REDACTED}&x=1"
    # names match by substring now: "passwordless" holds "password"; "passage" does not
    assert redactor.redact_text('a "passwordless": "x"') == f'a "passwordless": "{REDACTED}"'
    assert redactor.redact_text('a "passage": "fine"') == 'a "passage": "fine"'


def test_deep_or_huge_values_are_bounded_never_kept_raw() -> None:
    redactor = Redactor(["password"])
    deep: object = {"password": "hunter2"}
    for _ in range(200):
        deep = {"d": deep}
    assert "hunter2" not in json.dumps(redactor.redact_value(deep))


def test_decode_body_kinds() -> None:
    redactor = Redactor(["password"])
    value, facts = decode_body(b'{"password": "p", "a": 1}', content_type="application/json",
                               content_encoding=None, truncated=False, redactor=redactor)
    assert value == {"password": REDACTED, "a": 1}
    assert facts == {}
    value, _ = decode_body(b'{"password": "p", "a": ', content_type="application/json",
                           content_encoding=None, truncated=True, redactor=redactor)
    assert isinstance(value, str)
    assert '"p"' not in value
    value, _ = decode_body(b"not json", content_type="application/json",
                           content_encoding=None, truncated=False, redactor=redactor)
    assert value == "not json"
    packed = gzip.compress(b"hello " * 100)
    value, facts = decode_body(packed, content_type="text/plain", content_encoding="gzip",
                               truncated=False, redactor=redactor)
    assert value is None
    assert facts == {"encoding": "gzip"}
    value, facts = decode_body(b"\x89PNG...", content_type="image/png", content_encoding=None,
                               truncated=False, redactor=redactor)
    assert value is None
    assert facts["binary"] is True
    assert decode_body(b"", content_type=None, content_encoding=None, truncated=False,
                       redactor=redactor) == (None, {})
    value, _ = decode_body("caf\u00e9".encode()[:4], content_type=None, content_encoding=None,
                           truncated=True, redactor=redactor)
    assert value.startswith("caf")


def test_filter_headers_drops_secrets_and_joins_repeats() -> None:
    headers = [
        (b"Authorization", b"Bearer s3cret"),
        (b"cookie", b"sid=abc"),
        (b"x-custom-secret", b"zzz"),
        (b"accept", b"a"),
        (b"Accept", b"b"),
    ]
    assert filter_headers(headers, frozenset({"x-custom-secret"})) == {"accept": "a, b"}


# the holder


def test_capture_builds_a_redacted_exchange() -> None:
    rules = settings(secret_key="k" * 32)
    signer = TokenSigner([b"k" * 32])
    capture = ExchangeCapture("trace1", rules, signer, method="POST", path="/chat")
    capture.content_type = "application/json"
    capture.request.add(b'{"q": "hi", "password": "hunter2"}')
    capture.request_headers = [(b"authorization", b"Bearer s3cret"), (b"x-a", b"1")]
    capture.response_content_type = "application/json"
    capture.response.add(b'{"answer": "yo", "token": "abc"}')
    capture.status = 200
    capture.session_id = "sess"
    token = capture.token
    assert signer.issued_to(signer.verify(token, "trace1").unwrap(), session_subject("sess"))
    assert capture.token is token  # signed once
    capture.finish()
    exchange = capture.to_exchange()
    assert exchange.input == {"q": "hi", "password": REDACTED}
    assert exchange.output == {"answer": "yo", "token": REDACTED}
    assert exchange.metadata["request_headers"] == {"x-a": "1"}
    assert exchange.endpoint == "/chat"
    assert exchange.latency_ms is not None
    assert "hunter2" not in json.dumps(exchange.to_dict())
    assert "s3cret" not in json.dumps(exchange.to_dict())


def test_fields_set_by_context_win_and_are_redacted() -> None:
    capture = ExchangeCapture("t", settings())
    capture.request.add(b"raw body")
    capture.set_field("input", {"prompt": "p", "api_key": "k1"})
    capture.set_field("output", "answer")
    capture.set_field("model", "m")
    capture.set_field("metadata", {"a": 1})
    capture.set_field("metadata", {"b": 2})
    capture.set_field("user_id", "u1")
    exchange = capture.to_exchange()
    assert exchange.input == {"prompt": "p", "api_key": REDACTED}
    assert exchange.output == "answer"
    assert exchange.model == "m"
    assert exchange.user_id == "u1"
    assert exchange.metadata["a"] == 1
    assert exchange.metadata["b"] == 2


def test_switches_turn_capture_off() -> None:
    rules = CaptureSettings.from_config(
        FeedbackConfig(), capture_inputs=False, capture_outputs=False, capture_metadata=False
    )
    capture = ExchangeCapture("t", rules)
    capture.request.add(b"secret stuff")
    capture.response.add(b"more")
    exchange = capture.to_exchange()
    assert exchange.input is None
    assert exchange.output is None
    assert exchange.metadata == {}
    assert capture.request.total == 12  # still counted


def test_frozen_captures_thaw_to_the_same_exchange_and_escape_the_collector() -> None:
    import gc

    from feedback_asgi.storage.memory import MemoryExchangeStore

    store = MemoryExchangeStore()
    expected = {}
    for n, body in enumerate((b'{"q": "hi"}', b'{"q": "x", "password": "p"}', b"")):
        capture = ExchangeCapture(f"t{n}", settings(), method="POST", path="/chat")
        capture.content_type = "application/json"
        capture.request.add(body)
        capture.request_headers = [(b"cookie", b"c=1"), (b"x-a", str(n).encode())]
        capture.response_content_type = "application/json"
        capture.response.add(b'{"a": %d}' % n)
        capture.status = 200
        capture.finish()
        capture.prepare()
        frozen = capture.freeze()
        store.put_frozen(capture.trace_id, frozen, ExchangeCapture.thaw)
        expected[capture.trace_id] = capture.to_exchange().to_dict()
    gc.collect()
    clean = store._entries["t0"]
    assert not gc.is_tracked(clean[1])  # only plain values: the collector stops scanning it
    gc.collect()
    assert not gc.is_tracked(clean)  # and the store's entry around it, one pass later
    for trace_id, exchange in expected.items():
        built = asyncio.run(store.get(trace_id))
        assert built is not None
        assert built.to_dict() == exchange
    assert expected["t1"]["input"] == {"q": "x", "password": REDACTED}
    assert expected["t0"]["metadata"]["request_headers"] == {"x-a": "0"}


def test_one_memory_store_thaws_with_one_function() -> None:
    from feedback_asgi.storage.memory import MemoryExchangeStore

    store = MemoryExchangeStore()
    store.put_frozen("a", ("x",), ExchangeCapture.thaw)
    with pytest.raises(ValueError, match="one capture type"):
        store.put_frozen("b", ("y",), lambda frozen: ExchangeCapture.thaw(frozen))


def test_frozen_headers_keep_a_nul_a_raw_asgi_caller_sent() -> None:
    capture = ExchangeCapture("t", settings())
    capture.request_headers = [(b"x-odd", b"a\x00b"), (b"x-b", b"")]
    capture.prepare()
    exchange = ExchangeCapture.thaw(capture.freeze())
    assert exchange.metadata["request_headers"] == {"x-odd": "a\x00b", "x-b": ""}


def test_kept_headers_drop_credentials_in_any_case_and_join_repeats() -> None:
    capture = ExchangeCapture("t", settings(redact_headers=["X-Internal"]))
    capture.request_headers = [
        (b"Authorization", b"Bearer s3cret"), (b"cookie", b"sid=1"), (b"X-Internal", b"no"),
        (b"accept", b"a/b"), (b"Accept", b"c/d"), (b"user-agent", b"ua"),
    ]
    headers = capture.to_exchange().metadata["request_headers"]
    assert headers == {"accept": "a/b, c/d", "user-agent": "ua"}


@pytest.mark.parametrize(
    ("headers", "kept"),
    [
        ([(b"accept", b"a/b"), (b"user-agent", b"ua")], {"accept": "a/b", "user-agent": "ua"}),
        ([(b"Accept", b"a/b"), (b"Authorization", b"Bearer s3cret"), (b"X-Api-Key", b"k")],
         {"accept": "a/b"}),
        ([(b"cookie", b"sid=s3cret"), (b"accept", b"x")], {"accept": "x"}),
    ],
)
def test_the_middleware_keeps_headers_without_credentials_in_the_frozen_store(
    headers: list[tuple[bytes, bytes]], kept: dict[str, str]
) -> None:
    from feedback_asgi.kit import FeedbackKit
    from feedback_asgi.middleware import FeedbackMiddleware
    from feedback_asgi.storage.memory import MemoryExchangeStore, MemoryFeedbackStore
    from tests.asgi.harness import Receiver, http_scope, request

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]

    async def main() -> dict[str, str]:
        kit = FeedbackKit(FeedbackKit.for_testing().config, store=MemoryFeedbackStore(),
                          exchanges=MemoryExchangeStore())
        sent: list[object] = []

        async def send(message: object) -> None:
            sent.append(message)

        await FeedbackMiddleware(app, kit=kit)(http_scope(headers=headers),  # type: ignore[arg-type]
                                               Receiver(*request()), send)
        (frozen,) = [entry for _, entry in kit.exchanges._entries.values()]  # type: ignore[attr-defined]
        assert isinstance(frozen, tuple)
        assert b"s3cret" not in repr(frozen).encode()
        exchange = await kit.exchanges.get(frozen[0])
        assert exchange is not None
        return dict(exchange.metadata["request_headers"])

    assert asyncio.run(main()) == kept


def test_settings_built_directly_drop_their_redacted_headers_too() -> None:
    direct = CaptureSettings(redacted_headers=frozenset({"x-internal"}))
    assert {b"x-internal", b"authorization", b"cookie"} <= direct.dropped_headers
    capture = ExchangeCapture("t", direct)
    capture.request_headers = [(b"x-internal", b"no"), (b"accept", b"a/b")]
    assert capture.to_exchange().metadata["request_headers"] == {"accept": "a/b"}
