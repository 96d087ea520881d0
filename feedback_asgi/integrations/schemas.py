"""Pydantic models describing the feedback routes' JSON, for OpenAPI documents.

The endpoint validates requests itself (:mod:`feedback_asgi.web.submission`), so these models
document; they never parse a request. They match what the endpoint accepts and sends.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ChatRatingSubmission",
    "ErrorBody",
    "ErrorResponse",
    "FeedbackAccepted",
    "FeedbackEdit",
    "FeedbackEdited",
    "FeedbackPage",
    "FeedbackReplace",
    "FeedbackSubmission",
    "FeedbackWithHistory",
    "GroupFigures",
    "HealthReport",
    "StatsResponse",
    "StoredFeedback",
    "ThumbsSubmission",
    "TimeseriesPoint",
    "TimeseriesResponse",
    "request_body_openapi",
]

_TRACE = Field(
    default=None,
    pattern=r"^[A-Za-z0-9._-]{1,64}$",
    description="The X-Trace-Id of the response being rated; taken from the token when left out.",
)
_TOKEN = Field(
    default=None,
    max_length=2048,
    description="The X-Feedback-Token of that response, if not sent in the X-Feedback-Token header.",
)
_COMMENT = Field(default=None, description="A free-text comment.")
_VOTE: dict[str, Any] = {"anyOf": [
    {"type": "string", "pattern": "^\\s*([Uu][Pp]|[Dd][Oo][Ww][Nn])\\s*$"},
    {"enum": [1, -1, True, False]},
    {"type": "null"},
]}
_VOTE_DESCRIPTION = ("A thumbs vote: up (\"up\", 1, true), down (\"down\", -1, false), or null: "
                     "a neutral vote, which needs a comment.")
_METADATA = Field(default=None, description="Extra facts about the feedback (JSON object).")


class FeedbackSubmission(BaseModel):
    """The main shape: any feedback kind."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "type": "thumbs", "value": "up"},
                {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "type": "rating", "value": 4,
                 "comment": "good, a bit long"},
            ]
        },
    )

    trace_id: str | None = _TRACE
    type: str = Field(description="rating, thumbs, text, correction, label or a custom kind.")
    value: Any = Field(default=None, description="The kind's value, e.g. 4 or \"up\".")
    comment: str | None = _COMMENT
    metadata: dict[str, Any] | None = _METADATA
    token: str | None = _TOKEN


class ThumbsSubmission(BaseModel):
    """Shorthand for a thumbs vote; ``null`` is a neutral vote and needs a comment."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"rating": "down", "comment": "wrong"}]}
    )

    rating: Any = Field(..., description=_VOTE_DESCRIPTION, json_schema_extra=_VOTE)
    comment: str | None = _COMMENT
    trace_id: str | None = _TRACE
    token: str | None = _TOKEN
    metadata: dict[str, Any] | None = _METADATA


class ChatRatingSubmission(BaseModel):
    """The shape of hand-written chat feedback APIs: a +1/-1 vote on a query and response."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"query": "What is 2+2?", "response": "4", "model": "gpt-x", "rating": 1,
                 "intent": "math", "project": "demo"}
            ]
        },
    )

    query: str | None = None
    response: str | None = None
    model: str | None = Field(default=None, max_length=200)
    provider: str | None = Field(default=None, max_length=200)
    rating: Any = Field(..., description=_VOTE_DESCRIPTION, json_schema_extra=_VOTE)
    intent: str | None = Field(default=None, max_length=200)
    project: str | None = Field(default=None, max_length=200)
    comment: str | None = _COMMENT
    trace_id: str | None = _TRACE
    token: str | None = _TOKEN
    metadata: dict[str, Any] | None = _METADATA


class FeedbackAccepted(BaseModel):
    """``201``: the item is committed."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"status": "success", "feedback_id": "0b7f3c3e-6c1e-5d1a-9e38-2f1b5a7c9d10"}
            ]
        }
    )

    status: Literal["success"]
    feedback_id: str


class ErrorBody(BaseModel):
    """What went wrong: a stable code, a message, and the offending fields."""

    code: str
    message: str
    fields: dict[str, str]


class ErrorResponse(BaseModel):
    """Every error answer of the feedback routes."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"error": {"code": "validation_error", "message": "value: must be a number",
                           "fields": {"value": "must be a number"}}}
            ]
        }
    )

    error: ErrorBody


class StoredFeedback(BaseModel):
    """One stored feedback item (``FeedbackItem.to_dict()``)."""

    id: str
    feedback_type: str
    value: Any = None
    context: dict[str, Any]
    metadata: dict[str, Any]
    created_at: str
    supersedes: str | None = None
    tombstone: bool = False


class HealthReport(BaseModel):
    """``kit.health()``: the state of each part (database, Redis, exchange writer)."""

    model_config = ConfigDict(extra="allow")


def request_body_openapi() -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of ``POST /feedback``: one of the three shapes."""
    shapes = (FeedbackSubmission, ThumbsSubmission, ChatRatingSubmission)
    examples: dict[str, Any] = {}
    for shape in shapes:
        extra = shape.model_config.get("json_schema_extra")
        if isinstance(extra, dict):
            for index, example in enumerate(extra.get("examples", [])):  # type: ignore[arg-type]
                examples[f"{shape.__name__}{index + 1}"] = {"value": example}
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"anyOf": [shape.model_json_schema() for shape in shapes]},
                "examples": examples,
            }
        },
    }


class GroupFigures(BaseModel):
    """Figures of one group (``key``) of ``GET /stats``, or of the totals."""

    key: str | None = None
    total_count: int
    count_by_type: dict[str, int]
    rating_count: int
    average_rating: float | None
    thumbs_up: int
    thumbs_down: int
    thumbs_up_rate: float | None = Field(description="up / (up + down)")
    unique_users: int | None = Field(default=None, description="With unique=true only.")
    unique_sessions: int | None = Field(default=None, description="With unique=true only.")


class StatsResponse(BaseModel):
    """``GET /stats``: figures per group over ``[since, until)``."""

    since: str
    until: str
    by: str | None
    filters: dict[str, str]
    window: str | None = None
    groups: list[GroupFigures]
    totals: GroupFigures


class TimeseriesPoint(GroupFigures):
    """One bucket (UTC hour or day) of ``GET /stats/timeseries``."""

    bucket: str


class TimeseriesResponse(BaseModel):
    """``GET /stats/timeseries``: figures per bucket (and group), oldest first."""

    since: str
    until: str
    by: str | None
    filters: dict[str, str]
    window: str | None = None
    interval: Literal["hour", "day"]
    points: list[TimeseriesPoint]


class FeedbackPage(BaseModel):
    """``GET /``: live items newest first; pass ``next_cursor`` back as ``cursor``."""

    items: list[StoredFeedback]
    next_cursor: str | None


class FeedbackWithHistory(BaseModel):
    """``GET /{id}``: the row, its chain oldest first, and the live version's id."""

    item: StoredFeedback
    history: list[StoredFeedback]
    current_id: str | None


class FeedbackEdit(BaseModel):
    """``PATCH`` body of ``/{id}``: the fields to change."""

    model_config = ConfigDict(extra="forbid")

    value: Any = None
    comment: str | None = _COMMENT
    metadata: dict[str, Any] | None = _METADATA
    token: str | None = _TOKEN


class FeedbackReplace(FeedbackEdit):
    """``PUT`` body of ``/{id}``: a new value (and comment), replacing the old ones."""

    value: Any = Field(..., description="The new value, as for the item's kind.")


class FeedbackEdited(BaseModel):
    """``200``: the new version is committed."""

    status: Literal["success"]
    feedback_id: str
    supersedes: str
