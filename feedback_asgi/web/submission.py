"""The three JSON shapes ``POST /feedback`` accepts, turned into one :class:`Submission`.

1. ``{"trace_id", "type", "value", "comment"?, "metadata"?, "token"?}`` (the main shape);
2. ``{"rating": "up" | "down" | null, "comment"?, "trace_id"?, "token"?}`` (thumbs);
3. ``{"query", "response", "model", "rating": 1 | -1, "intent", "project"}`` (a thumbs vote
   on a chat answer, as hand-written feedback APIs take it; any of those keys but ``rating``
   makes it this shape).

Only the shape is checked here; the value and comment are validated by the kind's processor.
Metadata keys the server writes itself (:data:`RESERVED_METADATA_KEYS`) are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from feedback_asgi.core.exceptions import FeedbackValidationError
from feedback_asgi.core.records import FeedbackType

__all__ = [
    "CLIENT_CONTEXT_PREFIX",
    "RESERVED_METADATA_KEYS",
    "TRACE_ID_PATTERN",
    "Submission",
    "check_metadata_keys",
    "parse_submission",
]

TRACE_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MAX_TOKEN_LENGTH = 2048
MAX_LABEL_LENGTH = 200
MAX_METADATA_KEYS = 64

_COMMON = frozenset({"trace_id", "token", "comment", "metadata"})
_MAIN_KEYS = _COMMON | {"type", "value"}
_THUMBS_KEYS = _COMMON | {"rating"}
_CHAT_KEYS = _COMMON | {"query", "response", "model", "provider", "rating", "intent", "project"}
_CHAT_CONTEXT = {"query": "input", "response": "output"}
_CHAT_ONLY = frozenset({"query", "response", "model", "provider", "intent", "project"})
_CHAT_LABELS = ("model", "provider", "intent", "project")
CLIENT_CONTEXT_PREFIX = "client_"
"""What a token holder's chat-shape body says about the rated answer is kept in metadata
under this prefix (``client_model``, ``client_input``...): the captured exchange alone
says what was rated, and only its values become groups in the stats."""
RESERVED_METADATA_KEYS = frozenset({
    "submitter", "source", "edited_by", "idempotency_key",
    *(CLIENT_CONTEXT_PREFIX + name for name in ("input", "output", *_CHAT_LABELS)),
})
"""Metadata keys only the server writes (who submitted, how, what the client claimed)."""


@dataclass(frozen=True, slots=True)
class Submission:
    """One feedback submission, shape-checked but not yet validated by a processor."""

    kind: str
    value: Any
    comment: Any = None
    trace_id: str | None = None
    token: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    """What the body says about the rated exchange (chat shape only); the captured
    exchange wins over it."""


def _fail(name: str, problem: str) -> FeedbackValidationError:
    return FeedbackValidationError.for_field(name, problem)


def _optional_string(data: dict[str, Any], name: str, limit: int) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _fail(name, "must be a string")
    if len(value) > limit:
        raise _fail(name, f"must be at most {limit} characters")
    return value


def check_metadata_keys(metadata: dict[str, Any]) -> None:
    """Raise :class:`FeedbackValidationError` naming each reserved key a client sent."""
    reserved = sorted(key for key in metadata if key in RESERVED_METADATA_KEYS)
    if reserved:
        raise FeedbackValidationError(
            f"reserved metadata keys: {', '.join(reserved)}",
            {f"metadata.{key}": "is set by the server" for key in reserved},
        )


def parse_submission(data: object, *, max_text_length: int = 10_000) -> Submission:
    """Recognise the shape of ``data``; raise :class:`FeedbackValidationError` if none fits."""
    if not isinstance(data, dict):
        raise _fail("body", "must be a JSON object")
    if "type" in data:
        allowed, kind, value = _MAIN_KEYS, data["type"], data.get("value")
        if not isinstance(kind, str):
            raise _fail("type", "must be a string")
    elif not _CHAT_ONLY.isdisjoint(data):
        allowed, kind, value = _CHAT_KEYS, FeedbackType.THUMBS.value, data.get("rating")
        if value is None and "rating" not in data:
            raise _fail("rating", "is required (1 or -1)")
    elif "rating" in data:
        allowed, kind, value = _THUMBS_KEYS, FeedbackType.THUMBS.value, data["rating"]
    else:
        raise _fail("type", "is required")
    unknown = sorted(key for key in data if key not in allowed)
    if unknown:
        raise FeedbackValidationError(
            f"unexpected fields: {', '.join(unknown)[:200]}",
            {key[:64]: "is not an accepted field" for key in unknown[:10]},
        )
    trace_id = _optional_string(data, "trace_id", 64)
    if trace_id is not None and not TRACE_ID_PATTERN.fullmatch(trace_id):
        raise _fail("trace_id", "must be 1-64 characters of A-Z, a-z, 0-9, '.', '_', '-'")
    token = _optional_string(data, "token", MAX_TOKEN_LENGTH)
    metadata = data.get("metadata")
    if metadata is None:
        metadata = {}
    elif not isinstance(metadata, dict):
        raise _fail("metadata", "must be an object")
    elif len(metadata) > MAX_METADATA_KEYS:
        raise _fail("metadata", f"must have at most {MAX_METADATA_KEYS} keys")
    else:
        check_metadata_keys(metadata)
    context: dict[str, Any] = {}
    if allowed is _CHAT_KEYS:
        for name, key in _CHAT_CONTEXT.items():
            text = _optional_string(data, name, max_text_length)
            if text is not None:
                context[key] = text
        for name in _CHAT_LABELS:
            label = _optional_string(data, name, MAX_LABEL_LENGTH)
            if label is not None:
                context[name] = label
    return Submission(
        kind=kind,
        value=value,
        comment=data.get("comment"),
        trace_id=trace_id,
        token=token,
        metadata=dict(metadata),
        context=context,
    )
