"""The endpoint's own responses through a real uvicorn server: exact Content-Length, no body
on 204/HEAD, a refused oversized upload, and nothing in uvicorn's error log."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn

from feedback_asgi.kit import FeedbackKit
from feedback_asgi.web.endpoint import create_feedback_endpoint


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, FeedbackKit]]:
    kit = FeedbackKit.for_testing(allowed_origins=["https://app.example"])
    port = free_port()
    config = uvicorn.Config(create_feedback_endpoint(kit), host="127.0.0.1", port=port,
                            log_level="warning", lifespan="off")
    instance = uvicorn.Server(config)
    task = asyncio.create_task(instance.serve())
    for _ in range(200):
        if instance.started:
            break
        await asyncio.sleep(0.01)
    assert instance.started
    try:
        yield f"http://127.0.0.1:{port}", kit
    finally:
        instance.should_exit = True
        await asyncio.wait_for(task, 10)


async def test_lengths_and_bodies_on_the_wire(
    server: tuple[str, FeedbackKit], caplog: pytest.LogCaptureFixture
) -> None:
    base, kit = server
    token = kit.signer.sign("t-wire", "u")
    caplog.set_level(logging.WARNING, logger="uvicorn.error")
    async with httpx.AsyncClient(base_url=base) as http:
        answers = [
            await http.post("/feedback", json={"trace_id": "t-wire", "type": "thumbs",
                                               "value": "up"},
                            headers={"X-Feedback-Token": token}),
            await http.post("/feedback", content=b"{bad", headers={"Content-Type": "application/json"}),
            await http.post("/feedback", content=b"{" + b" " * 70_000 + b"}",
                            headers={"Content-Type": "application/json"}),
            await http.post("/feedback", json={"type": "text", "value": "\u00e9t\u00e9 \u2603"},
                            headers={"X-Feedback-Token": token}),
            await http.get("/feedback/no/such/route"),
        ]
        preflight = await http.options("/feedback", headers={
            "Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
        head = await http.head("/feedback/health")
        health = await http.get("/feedback/health")
    assert [a.status_code for a in answers] == [201, 400, 413, 201, 404]
    for answer in [*answers, health]:
        assert int(answer.headers["content-length"]) == len(answer.content) > 0
        answer.json()
    assert preflight.status_code == 204
    assert preflight.content == b""
    assert "content-length" not in preflight.headers or preflight.headers["content-length"] == "0"
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) > 0  # the length a GET's body would have
    assert [r for r in caplog.records if r.name.startswith("uvicorn")] == []
