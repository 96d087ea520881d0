"""The three accepted body shapes, and what each rejects."""

from __future__ import annotations

from typing import Any

import pytest

from feedback_asgi.core.exceptions import FeedbackValidationError
from feedback_asgi.web.submission import parse_submission


def test_main_shape() -> None:
    sub = parse_submission(
        {"trace_id": "t-1", "type": "rating", "value": 4, "comment": "ok",
         "metadata": {"page": "home"}, "token": "tok"}
    )
    assert (sub.kind, sub.value, sub.comment, sub.trace_id, sub.token) == (
        "rating", 4, "ok", "t-1", "tok"
    )
    assert sub.metadata == {"page": "home"}
    assert sub.context == {}


@pytest.mark.parametrize("rating", ["up", "down", None])
def test_thumbs_shorthand(rating: str | None) -> None:
    sub = parse_submission({"rating": rating, "comment": "meh"})
    assert (sub.kind, sub.value, sub.comment) == ("thumbs", rating, "meh")


def test_chat_shape_fills_context() -> None:
    sub = parse_submission(
        {"query": "2+2?", "response": "4", "model": "m1", "rating": -1,
         "intent": "math", "project": "p"}
    )
    assert (sub.kind, sub.value) == ("thumbs", -1)
    assert sub.context == {"input": "2+2?", "output": "4", "model": "m1", "intent": "math",
                           "project": "p"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([1, 2], "body"),
        ("text", "body"),
        ({"value": 3}, "type"),
        ({"type": 5, "value": 3}, "type"),
        ({"type": "rating", "value": 3, "extra": 1}, "extra"),
        ({"rating": "up", "query": "q"}, None),  # the chat shape: accepted
        ({"query": "q", "response": "r"}, "rating"),
        ({"type": "rating", "trace_id": "bad id\r\n"}, "trace_id"),
        ({"type": "rating", "trace_id": "x" * 65}, "trace_id"),
        ({"type": "rating", "trace_id": 7}, "trace_id"),
        ({"type": "rating", "metadata": [1]}, "metadata"),
        ({"type": "rating", "metadata": {str(i): i for i in range(65)}}, "metadata"),
        ({"type": "rating", "token": "t" * 3000}, "token"),
        ({"query": "q", "rating": 1, "model": "m" * 201}, "model"),
        ({"query": "q" * 11, "rating": 1}, "query"),
    ],
)
def test_rejections_name_the_field(body: Any, field: str | None) -> None:
    if field is None:
        assert parse_submission(body).kind == "thumbs"
        return
    with pytest.raises(FeedbackValidationError) as caught:
        parse_submission(body, max_text_length=10)
    assert field in caught.value.fields
