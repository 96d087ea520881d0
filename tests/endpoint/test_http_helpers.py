"""The endpoint's HTTP helpers: bounded body reading, strict JSON, replies."""

from __future__ import annotations

import json
from typing import Any

import pytest

from feedback_asgi.web.wire import (
    ClientDisconnected,
    HttpError,
    Reply,
    error_reply,
    parse_json,
    read_body,
    require_json_content_type,
)


class Receiver:
    """A ``receive`` that hands out the given messages and fails when over-called."""

    def __init__(self, messages: list[dict[str, Any]]) -> None:
        self.messages = list(messages)
        self.calls = 0

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        if not self.messages:
            raise AssertionError("receive() called after the last message: would hang")
        return self.messages.pop(0)


def scope_with(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "headers": headers}


async def test_read_body_joins_chunks() -> None:
    receive = Receiver(
        [
            {"type": "http.request", "body": b'{"a":', "more_body": True},
            {"type": "http.request", "body": b"", "more_body": True},
            {"type": "http.request", "body": b"1}", "more_body": False},
        ]
    )
    assert await read_body(scope_with([]), receive, 100) == b'{"a":1}'
    assert receive.calls == 3


async def test_declared_length_over_limit_is_refused_without_reading() -> None:
    receive = Receiver([])
    with pytest.raises(HttpError) as caught:
        await read_body(scope_with([(b"content-length", b"101")]), receive, 100)
    assert caught.value.status == 413
    assert receive.calls == 0


async def test_chunked_body_stops_pulling_once_past_the_limit() -> None:
    chunks = [{"type": "http.request", "body": b"x" * 40, "more_body": True} for _ in range(10)]
    receive = Receiver(chunks)
    with pytest.raises(HttpError) as caught:
        await read_body(scope_with([]), receive, 100)
    assert caught.value.status == 413
    assert receive.calls == 3  # 40 + 40 + 40 > 100: the fourth chunk is never pulled


async def test_a_lying_content_length_is_still_bounded() -> None:
    chunks = [{"type": "http.request", "body": b"x" * 60, "more_body": True} for _ in range(5)]
    receive = Receiver(chunks)
    with pytest.raises(HttpError) as caught:
        await read_body(scope_with([(b"content-length", b"10")]), receive, 100)
    assert caught.value.status == 413
    assert receive.calls == 2


async def test_non_numeric_content_length_is_a_bad_request() -> None:
    with pytest.raises(HttpError) as caught:
        await read_body(scope_with([(b"content-length", b"-5")]), Receiver([]), 100)
    assert caught.value.status == 400


async def test_disconnect_mid_body() -> None:
    receive = Receiver(
        [{"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}]
    )
    with pytest.raises(ClientDisconnected):
        await read_body(scope_with([]), receive, 100)


@pytest.mark.parametrize(
    "content_type",
    [b"application/json", b"Application/JSON; charset=utf-8", b"application/vnd.api+json"],
)
def test_json_content_types_accepted(content_type: bytes) -> None:
    require_json_content_type(scope_with([(b"content-type", content_type)]))


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(b"content-type", b"text/plain")],
        [(b"content-type", b"application/x-www-form-urlencoded")],
        [(b"content-type", b"application/json; charset=latin-1")],
    ],
)
def test_other_content_types_get_415(headers: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(HttpError) as caught:
        require_json_content_type(scope_with(headers))
    assert caught.value.status == 415
    assert caught.value.code == "unsupported_media_type"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"a": 1', "malformed"),
        (b"", "malformed"),
        (b'{"a": 1, "a": 2}', "duplicate key"),
        (b'{"a": NaN}', "NaN"),
        (b'{"a": -Infinity}', "Infinity"),
        (b'{"a": 1e309}', "out of range"),
        (b'{"a": "\xff\xfe"}', "UTF-8"),
        (b"[" * 10_000 + b"]" * 10_000, "nested deeper"),
        (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "nested deeper"),
        (b"1" * 5000, "malformed"),
    ],
)
def test_parse_json_rejects(body: bytes, fragment: str) -> None:
    with pytest.raises(HttpError) as caught:
        parse_json(body)
    assert caught.value.status == 400
    assert caught.value.code == "invalid_json"
    assert fragment in caught.value.message


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = json.dumps({"comment": "[" * 5000, "nested": [[[1]]]})
    assert parse_json(text.encode())["nested"] == [[[1]]]


def test_nesting_at_the_limit_is_accepted() -> None:
    body = b"[" * 32 + b"]" * 32
    assert parse_json(body) is not None
    with pytest.raises(HttpError):
        parse_json(b"[" * 33 + b"]" * 33)


async def test_reply_sets_exact_content_length() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    reply = error_reply(422, "validation_error", "value: bad \u00e9", {"value": "bad"})
    await reply.send(send)
    headers = dict(sent[0]["headers"])
    assert int(headers[b"content-length"]) == len(sent[1]["body"])
    assert json.loads(sent[1]["body"]) == {
        "error": {"code": "validation_error", "message": "value: bad \u00e9",
                  "fields": {"value": "bad"}}
    }


async def test_head_and_204_send_no_body() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await Reply(204, b"", ((b"allow", b"POST"),)).send(send)
    await Reply(200, b"{}").send(send, head=True)
    assert dict(sent[0]["headers"]) == {b"allow": b"POST"}
    assert sent[1]["body"] == b""
    assert dict(sent[2]["headers"])[b"content-length"] == b"2"
    assert sent[3]["body"] == b""
