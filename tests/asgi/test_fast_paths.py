"""The performance shortcuts give exactly what the slow paths give.

* ``Redactor.is_clean``: a body with nothing to redact skips the redaction walk;
  ``decode_body`` must equal the full walk on any JSON or text.
* Pending exchanges: with the in-memory exchange store the writer keeps a prepared capture
  (credentials dropped, anything to redact already redacted) and builds the exchange on
  first read; it must equal the exchange built at once.
* The writer wakes its drainer once per batch, not once per exchange.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from feedback_asgi.capture import ExchangeCapture
from feedback_asgi.context import FeedbackContext
from feedback_asgi.exchange_writer import ExchangeWriter
from feedback_asgi.kit import FeedbackKit
from feedback_asgi.middleware import FeedbackMiddleware
from feedback_asgi.redaction import MAX_DEPTH, REDACTED, Redactor, decode_body
from feedback_asgi.storage.memory import MemoryExchangeStore, MemoryFeedbackStore
from feedback_asgi.types import Exchange

KEYS = ("password", "token", "secret", "api_key")
REDACTOR = Redactor(KEYS)

# keys and strings chosen to sit on the edges of the check
NAMES = st.sampled_from([
    "password", "Password", "PASSWORD", "token", "max_tokens", "tokens", "my_token", "api_key",
    "secretive", "a", "model", "p\u0061ssword", "to\u212aen", "t\u00f6ken", "x=1", "",
])
TEXTS = st.one_of(
    st.text(max_size=20),
    st.sampled_from([
        '{"token": "abc"}', 'say "password": 1', "a=1&token=2", "TOKEN=x", "max_tokens=5",
        "password", '"secret"', "to\u212aen=1", "tokens", "==", '\\"token\\"',
    ]),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXTS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(NAMES, children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(value=JSON_VALUES, ascii_only=st.booleans())
def test_decode_body_equals_the_full_walk_on_json(value: Any, ascii_only: bool) -> None:
    data = json.dumps(value, ensure_ascii=ascii_only).encode()
    expected = REDACTOR.redact_value(json.loads(data))
    got, facts = decode_body(data, content_type="application/json", content_encoding=None,
                             truncated=False, redactor=REDACTOR)
    assert facts == {}
    assert got == expected


@settings(max_examples=400, deadline=None)
@given(text=st.one_of(TEXTS, st.lists(TEXTS, max_size=5).map(" ".join)).filter(bool))
def test_decode_body_equals_redact_text_on_text(text: str) -> None:
    got, _ = decode_body(text.encode(), content_type="text/plain", content_encoding=None,
                         truncated=False, redactor=REDACTOR)
    assert got == REDACTOR.redact_text(text)


def test_is_clean_edges() -> None:
    assert REDACTOR.is_clean(b'{"max_tokens": 512, "prompt_tokens": 3, "note": "the tokens"}')
    assert not REDACTOR.is_clean(b'{"Token": 1}')
    # a longer key that merely starts or ends with a configured one is not redacted
    assert REDACTOR.is_clean(b'{"tokens": ["a", "b"], "tokenizer": "bpe", "xtoken": 1}')
    assert not REDACTOR.is_clean(b'{"tokens": 1, "token": 2}')
    assert not REDACTOR.is_clean(b'{"a": "x \\"token\\"= 1"}')
    assert not REDACTOR.is_clean(b'{"a": "x \\"token\\": 1"}')
    assert not REDACTOR.is_clean(b"a=1&TOKEN=2")
    assert not REDACTOR.is_clean(b'{"p\\u0061ssword": 1}')  # an escape can spell a key
    assert not REDACTOR.is_clean('{"to\u212aen": 1}'.encode())  # Kelvin sign lowercases to k
    assert not Redactor(["pässword"]).is_clean(b'{"a": 1}')  # non-ASCII keys: never clean


def test_deep_or_huge_json_still_gets_the_walk_bounds() -> None:
    deep = ("[" * (MAX_DEPTH + 3) + "1" + "]" * (MAX_DEPTH + 3)).encode()
    assert REDACTOR.is_clean(deep)
    value, _ = decode_body(deep, content_type="application/json", content_encoding=None,
                           truncated=False, redactor=REDACTOR)
    assert value == REDACTOR.redact_value(json.loads(deep))
    assert REDACTED in json.dumps(value)


def _app() -> Starlette:
    async def echo(request: Request) -> Response:
        return JSONResponse(await request.json())

    async def chat(request: Request) -> Response:
        async with FeedbackContext(operation="chat") as ctx:
            ctx.set_input({"prompt": "hi", "api_key": "sk-ctx-secret"})
            ctx.set_result("hello")
        return JSONResponse({"ok": True})

    async def sse(request: Request) -> Response:
        async def events() -> Any:
            yield "data: password=hunter2\n\n"
            yield "data: fine\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(routes=[Route("/echo", echo, methods=["POST"]),
                             Route("/chat", chat, methods=["POST"]), Route("/sse", sse)])


REQUESTS: list[tuple[str, str, Any]] = [
    ("POST", "/echo", {"model": "m", "max_tokens": 5, "messages": ["a", "b"]}),
    ("POST", "/echo", {"user": "u", "password": "hunter2", "nested": {"Token": "tok-123"}}),
    ("POST", "/chat", {"q": 1}),
    ("GET", "/sse", None),
]


async def _exchanges(kit: FeedbackKit) -> list[Exchange]:
    app = FeedbackMiddleware(_app(), kit=kit)
    traces = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app),
                                 base_url="http://testserver") as http:
        for method, path, body in REQUESTS:
            response = await http.request(method, path, json=body, headers={
                "Authorization": "Bearer sk-header-secret", "Cookie": "sid=cookie-secret"})
            assert response.status_code == 200
            traces.append(response.headers["x-trace-id"])
    assert await kit.writer.flush()
    found = [await kit.exchanges.get(trace) for trace in traces]
    assert all(exchange is not None for exchange in found)
    return [exchange for exchange in found if exchange is not None]


def _comparable(exchange: Exchange) -> dict[str, Any]:
    data = exchange.to_dict()
    for name in ("trace_id", "latency_ms", "created_at"):
        data.pop(name, None)
    data["metadata"].pop("operation_latency_ms", None)  # timed, so never equal
    return data


async def test_pending_exchanges_equal_the_ones_built_at_once() -> None:
    eager = FeedbackKit.for_testing()  # synchronous writer: exchanges built at once
    config = eager.config
    lazy = FeedbackKit(config, store=MemoryFeedbackStore(),
                       exchanges=MemoryExchangeStore(max_items=100))
    store = lazy.exchanges
    assert isinstance(store, MemoryExchangeStore)
    assert store.accepts_pending
    app = FeedbackMiddleware(_app(), kit=lazy)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app),
                                 base_url="http://testserver") as http:
        for method, path, body in REQUESTS:
            await http.request(method, path, json=body, headers={
                "Authorization": "Bearer sk-header-secret", "Cookie": "sid=cookie-secret"})
    assert await lazy.writer.flush()
    pending = [entry for _, entry in store._entries.values()]
    assert len(pending) == len(REQUESTS)
    assert all(isinstance(entry, ExchangeCapture) for entry in pending)
    # what waits in memory holds no credential and nothing that needed redaction
    for entry in pending:
        assert isinstance(entry, ExchangeCapture)
        kept = repr([entry.request.chunks, entry.response.chunks, entry.request_headers,
                     entry.fields, entry.sse.data() if entry.sse is not None else b""])
        for secret in ("sk-header-secret", "cookie-secret", "hunter2", "tok-123", "sk-ctx-secret"):
            assert secret not in kept
    # the clean body waits as bytes, to be decoded only if read
    first = pending[0]
    assert isinstance(first, ExchangeCapture)
    assert first.request.chunks
    built = [_comparable(exchange) for exchange in await _exchanges(lazy)]
    expected = [_comparable(exchange) for exchange in await _exchanges(eager)]
    assert built == expected
    # the exchanges read were built once and kept; the first ones, never read, still wait
    kinds = [isinstance(entry, Exchange) for _, entry in store._entries.values()]
    assert kinds == [False] * len(REQUESTS) + [True] * len(REQUESTS)
    assert "hunter2" not in json.dumps(built)
    await lazy.shutdown()


async def test_a_store_overriding_put_gets_finished_exchanges() -> None:
    seen: list[Exchange] = []

    class Recording(MemoryExchangeStore):
        async def put(self, exchange: Exchange, ttl: float | None = None) -> None:
            seen.append(exchange)
            await super().put(exchange, ttl)

    store = Recording()
    assert not store.accepts_pending
    kit = FeedbackKit(FeedbackKit.for_testing().config, store=MemoryFeedbackStore(),
                      exchanges=store)
    await _exchanges(kit)
    assert len(seen) == len(REQUESTS)
    await kit.shutdown()


async def test_a_failing_build_on_read_is_a_miss_not_an_error() -> None:
    class Broken:
        trace_id = "broken"

        def to_exchange(self) -> Exchange:
            raise RuntimeError("bug")

    store = MemoryExchangeStore()
    store.put_pending(Broken())
    assert await store.get("broken") is None
    assert len(store) == 0


async def test_one_drainer_wake_up_serves_a_batch() -> None:
    depths: list[int] = []

    class Watching(MemoryExchangeStore):
        async def put(self, exchange: Exchange, ttl: float | None = None) -> None:
            depths.append(writer.depth)
            await super().put(exchange, ttl)

    writer = ExchangeWriter(Watching())
    await writer.start()
    await asyncio.sleep(0)  # the drainer now waits
    for n in range(50):
        writer.put_nowait(Exchange(trace_id=f"t{n}"))
        await asyncio.sleep(0)  # a request's worth of loop turns between exchanges
    assert await writer.flush()
    assert len(depths) == 50
    # one pass took them all: the first write saw the other 49 still queued
    assert depths[0] == 49
    assert depths == sorted(depths, reverse=True)
    await writer.stop()


def test_trace_ids_from_the_pool_are_unique_version_4_uuids() -> None:
    import uuid

    from feedback_asgi.capture import new_trace_id

    ids = [new_trace_id() for _ in range(3000)]  # crosses several pool refills
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(trace).version == 4 and len(trace) == 32 for trace in ids)
