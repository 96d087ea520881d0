"""The FastAPI chat example end to end, on a real SQLite file: chat, then feedback on it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from example_apps.fastapi_chat.app import MODEL, create_app, local_model
from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.kit import FeedbackKit
from tests.endpoint.apps import client, error_of


@pytest.fixture
async def kit(tmp_path: Path) -> AsyncIterator[FeedbackKit]:
    kit = FeedbackKit(
        FeedbackConfig(database_url=f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}",
                       secret_key="example-app-test-secret-0123456789")
    )
    yield kit
    await kit.shutdown()


def test_responder_is_deterministic() -> None:
    assert local_model("one two three") == local_model("one two three")
    assert "3 words" in local_model("one two three")
    assert local_model("   ") == "Say something and I will answer."


async def test_chat_then_feedback_stores_that_chats_input_and_output(kit: FeedbackKit) -> None:
    async with client(create_app(kit)) as http:
        chat = await http.post("/chat", json={"message": "how are you"})
        assert chat.status_code == 200
        trace, token = chat.headers["x-trace-id"], chat.headers["x-feedback-token"]
        body = chat.json()
        assert (body["trace_id"], body["feedback_token"]) == (trace, token)
        feedback = await http.post(
            "/feedback",
            json={"trace_id": trace, "type": "thumbs", "value": "up", "comment": "nice"},
            headers={"X-Feedback-Token": token},
        )
        assert feedback.status_code == 201, feedback.text
        feedback_id = feedback.json()["feedback_id"]
    item = await kit.store.get(feedback_id)
    assert item is not None
    assert item.context["input"] == "how are you"
    assert item.context["output"] == local_model("how are you")
    assert item.context["model"] == MODEL
    assert item.context["operation"] == "chat"
    assert item.comment == "nice"


async def test_streamed_chat_ends_with_the_feedback_event(kit: FeedbackKit) -> None:
    async with client(create_app(kit)) as http:
        chat = await http.post("/chat", json={"message": "stream this please", "stream": True})
        assert chat.headers["content-type"].startswith("text/event-stream")
        events = [e for e in chat.text.replace("\r\n", "\n").split("\n\n") if e.strip()]
        words = [e.removeprefix("data: ") for e in events if e.startswith("data: ")]
        assert " ".join(words) == local_model("stream this please")
        last = events[-1].splitlines()
        assert last[0] == "event: feedback"
        carried = json.loads(last[1].removeprefix("data: "))
        assert carried["trace_id"] == chat.headers["x-trace-id"]
        feedback = await http.post(
            "/feedback",
            json={"trace_id": carried["trace_id"], "type": "rating", "value": 2},
            headers={"X-Feedback-Token": carried["token"]},
        )
    assert feedback.status_code == 201, feedback.text
    item = await kit.store.get(feedback.json()["feedback_id"])
    assert item is not None
    assert item.context["input"] == "stream this please"
    assert item.context["output"] == local_model("stream this please")


async def test_page_docs_and_errors(kit: FeedbackKit) -> None:
    async with client(create_app(kit)) as http:
        page = await http.get("/")
        script = await http.get("/static/chat.js")
        widget = await http.get("/feedback/widget.js")
        document = (await http.get("/openapi.json")).json()
        wrong = await http.post("/feedback", json={"trace_id": "x", "type": "thumbs",
                                                   "value": 1})
    assert page.status_code == 200
    assert '<script src="/feedback/widget.js" defer>' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.cookies.get("demo_session")
    assert script.status_code == widget.status_code == 200
    assert "FeedbackWidget.fromEvent" in script.text
    assert {"/chat", "/feedback", "/feedback/health", "/feedback/sessions/{session_id}"} <= set(
        document["paths"]
    )
    assert wrong.status_code == 401
    assert error_of(wrong)["code"] == "token_missing"
