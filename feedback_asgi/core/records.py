"""The core data model: feedback kinds, items, summaries and exchanges.

Built-in kinds are members of :class:`FeedbackType`. A custom kind (say ``"preference"``) is a
plain lowercase string registered with a processor
(``registry.register("preference", processor)``); everything that accepts a ``FeedbackType``
accepts it too, typed as :data:`FeedbackKind`.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Self, TypeAlias

__all__ = [
    "CORRELATION_KEYS",
    "Exchange",
    "FeedbackItem",
    "FeedbackKind",
    "FeedbackSummary",
    "FeedbackType",
    "normalize_kind",
    "string_problem",
    "utc_now",
]


class FeedbackType(StrEnum):
    """The built-in feedback kinds."""

    RATING = "rating"
    """A numeric score within the configured range (default 1.0-5.0)."""
    THUMBS = "thumbs"
    """Up (+1), down (-1), or ``None`` for a neutral comment."""
    TEXT = "text"
    """A free-text comment."""
    CORRECTION = "correction"
    """``{"original": ..., "corrected": ...}``."""
    LABEL = "label"
    """A ground-truth ``{"label": ..., "input": ...}``."""


FeedbackKind: TypeAlias = FeedbackType | str
"""A built-in :class:`FeedbackType` or the name of a registered custom kind."""

_KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

CORRELATION_KEYS: tuple[str, ...] = (
    "trace_id",
    "session_id",
    "user_id",
    "model",
    "provider",
    "intent",
    "project",
    "endpoint",
    "request_id",
    "otel_trace_id",
)
"""Context keys that identify what was rated; stores index and filter on them.

``trace_id`` is the response id the server minted (what tokens are signed for);
``request_id`` and ``otel_trace_id`` are what the client or the tracing system called the
request (an incoming ``X-Request-ID``/``X-Trace-Id``, the ``traceparent`` or active span),
kept for correlation only, never used as a key."""


def normalize_kind(kind: FeedbackKind) -> FeedbackKind:
    """Return the ``FeedbackType`` member for a built-in kind, else the validated custom name.

    Raises ``ValueError`` for a name that is not a lowercase identifier of at most 32 chars.
    """
    if isinstance(kind, FeedbackType):
        return kind
    if not isinstance(kind, str):
        raise ValueError(f"feedback kind must be a string, not {type(kind).__name__}")
    try:
        return FeedbackType(kind)
    except ValueError:
        pass
    if not _KIND_PATTERN.fullmatch(kind):
        raise ValueError(
            f"invalid feedback kind {kind!r}: use lowercase letters, digits and '_' "
            "(at most 32, starting with a letter)"
        )
    return kind


def string_problem(value: str) -> str | None:
    """What makes a string unstorable (databases refuse NUL and lone surrogates), or ``None``."""
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (no lone surrogates)"
    return None


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _new_id() -> str:
    return str(uuid.uuid4())


def _parse_time(value: object, name: str) -> datetime:
    if isinstance(value, datetime):
        return _as_utc(value)
    if isinstance(value, str):
        try:
            return _as_utc(datetime.fromisoformat(value))
        except ValueError:
            pass
    raise ValueError(f"{name} must be an ISO 8601 timestamp, got {value!r}")


@dataclass(frozen=True, slots=True, eq=True)
class FeedbackItem:
    """One piece of feedback on one AI output. Immutable: an edit is a new item.

    ``context`` holds what was rated (``trace_id``, ``session_id``, ``user_id``, ``model``,
    ``provider``, ``intent``, ``project``, ``endpoint``, ``input``, ``output``);
    ``metadata`` holds facts about the feedback itself (``comment``, ``source``, ...).
    An item with ``supersedes=<id>`` is a new version of that item; with ``tombstone=True``
    as well, it retracts it.
    """

    feedback_type: FeedbackKind
    value: Any
    context: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=_new_id)
    created_at: datetime = field(default_factory=utc_now)
    supersedes: str | None = None
    tombstone: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "feedback_type", normalize_kind(self.feedback_type))
        object.__setattr__(self, "created_at", _as_utc(self.created_at))
        if self.tombstone and self.supersedes is None:
            raise ValueError("a tombstone must name the item it retracts in `supersedes`")

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def type(self) -> FeedbackKind:
        """Alias of ``feedback_type``."""
        return self.feedback_type

    @property
    def trace_id(self) -> str | None:
        """The trace id of the rated exchange, if known."""
        value = self.context.get("trace_id")
        return value if isinstance(value, str) else None

    @property
    def comment(self) -> str | None:
        """The free-text comment attached to this feedback, if any."""
        value = self.metadata.get("comment")
        return value if isinstance(value, str) else None

    def evolve(self, **changes: Any) -> FeedbackItem:
        """A copy with ``changes`` applied (the same id unless one is given)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``created_at`` is an ISO 8601 string in UTC."""
        return {
            "id": self.id,
            "feedback_type": str(self.feedback_type),
            "value": self.value,
            "context": dict(self.context),
            "metadata": dict(self.metadata),
            "created_at": self.created_at.isoformat(),
            "supersedes": self.supersedes,
            "tombstone": self.tombstone,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeedbackItem:
        """Rebuild an item from :meth:`to_dict` output (``type`` is accepted for the kind)."""
        kind = data.get("feedback_type", data.get("type"))
        if kind is None:
            raise ValueError("feedback_type is required")
        context = data.get("context")
        metadata = data.get("metadata")
        context = {} if context is None else context
        metadata = {} if metadata is None else metadata
        if not isinstance(context, dict) or not isinstance(metadata, dict):
            raise ValueError("context and metadata must be objects")
        kwargs: dict[str, Any] = {
            "feedback_type": kind,
            "value": data.get("value"),
            "context": dict(context),
            "metadata": dict(metadata),
            "supersedes": data.get("supersedes"),
            "tombstone": bool(data.get("tombstone", False)),
        }
        if data.get("id") is not None:
            kwargs["id"] = str(data["id"])
        if data.get("created_at") is not None:
            kwargs["created_at"] = _parse_time(data["created_at"], "created_at")
        return cls(**kwargs)


@dataclass(frozen=True, slots=True)
class FeedbackSummary:
    """Aggregate figures over a set of feedback items."""

    total_count: int = 0
    average_rating: float | None = None
    count_by_type: dict[str, int] = field(default_factory=dict)
    thumbs_up: int = 0
    thumbs_down: int = 0

    @property
    def thumbs_up_rate(self) -> float | None:
        """``up / (up + down)``, or ``None`` when there is no thumbs vote."""
        votes = self.thumbs_up + self.thumbs_down
        return self.thumbs_up / votes if votes else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, including ``thumbs_up_rate``."""
        return {
            "total_count": self.total_count,
            "average_rating": self.average_rating,
            "count_by_type": dict(self.count_by_type),
            "thumbs_up": self.thumbs_up,
            "thumbs_down": self.thumbs_down,
            "thumbs_up_rate": self.thumbs_up_rate,
        }


@dataclass(slots=True)
class Exchange:
    """What one request or one ``FeedbackContext`` captured: the thing feedback rates.

    Mutable while it is being captured; stored once finished. ``input`` and ``output`` are
    the captured (bounded, redacted) bodies or whatever the app set through the context.
    """

    trace_id: str
    """The response id the server minted: the key of the exchange, what tokens are for."""
    session_id: str | None = None
    user_id: str | None = None
    request_id: str | None = None
    """The client's id for the request (``X-Request-ID``/``X-Trace-Id``), correlation only."""
    otel_trace_id: str | None = None
    """The OpenTelemetry trace the request belonged to (``traceparent`` or the active span)."""
    model: str | None = None
    provider: str | None = None
    intent: str | None = None
    project: str | None = None
    endpoint: str | None = None
    operation: str | None = None
    input: Any = None
    output: Any = None
    status: int | None = None
    latency_ms: float | None = None
    error: str | None = None
    input_truncated: bool = False
    output_truncated: bool = False
    client_disconnected: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=utc_now)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``created_at`` is an ISO 8601 string in UTC."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["created_at"] = _as_utc(self.created_at).isoformat()
        data["metadata"] = dict(self.metadata)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Rebuild an exchange from :meth:`to_dict` output, ignoring unknown keys."""
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        if "trace_id" not in kwargs or not isinstance(kwargs["trace_id"], str):
            raise ValueError("an exchange needs a string trace_id")
        if kwargs.get("created_at") is not None:
            kwargs["created_at"] = _parse_time(kwargs["created_at"], "created_at")
        else:
            kwargs.pop("created_at", None)
        return cls(**kwargs)

    def correlation(self) -> dict[str, Any]:
        """The context keys a feedback item on this exchange inherits (``None`` values left out)."""
        data = {
            "trace_id": self.trace_id,
            "session_id": self.session_id,
            "user_id": self.user_id,
            "model": self.model,
            "provider": self.provider,
            "intent": self.intent,
            "project": self.project,
            "endpoint": self.endpoint,
            "request_id": self.request_id,
            "otel_trace_id": self.otel_trace_id,
            "input": self.input,
            "output": self.output,
        }
        return {k: v for k, v in data.items() if v is not None}
