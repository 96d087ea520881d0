"""What an export writes (kind, format, window, filters, weights) and what it skipped."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from feedback_asgi.core.exceptions import FeedbackValidationError
from feedback_asgi.core.records import utc_now
from feedback_asgi.storage.base import check_time, key_problem

__all__ = [
    "DEFAULT_WINDOW",
    "EXPORT_FILTERS",
    "ExportFormat",
    "ExportKind",
    "ExportOptions",
    "ExportReport",
    "parse_moment",
]

DEFAULT_WINDOW = timedelta(days=7)
"""The window an export covers when ``since`` is not given."""


class ExportKind(StrEnum):
    """What the export is for."""

    FINETUNE = "finetune"
    """Supervised chat examples from rated exchanges (thumbs, ratings, corrections)."""
    PREFERENCES = "preferences"
    """DPO pairs: corrections, and up/down votes on different answers to the same prompt."""
    KTO = "kto"
    """Unpaired preferences: one answer and a true/false label per vote."""
    LABELS = "labels"
    """``{"input", "label"}`` from label feedback."""


class ExportFormat(StrEnum):
    """Which trainer's shape the lines take."""

    DEFAULT = "default"
    """Example-level float ``weight`` (Fireworks-style) for finetune; TRL's shapes otherwise."""
    OPENAI = "openai"
    """OpenAI's fine-tuning shapes (finetune and preferences only)."""


_OPENAI_KINDS = (ExportKind.FINETUNE, ExportKind.PREFERENCES)


def parse_moment(text: str | None) -> datetime | None:
    """An ISO 8601 date or timestamp (naive means UTC), or ``None``; ``ValueError`` if bad.

    Only the syntax is checked here: the range is :func:`~feedback_asgi.storage.base.check_time`'s,
    applied by :class:`ExportOptions` and :func:`feedback_asgi.analytics.resolve_window`.
    """
    if text is None or text.strip() == "":
        return None
    try:
        if not text.strip().isprintable():  # CPython's parser would stop at a NUL, accepting it
            raise ValueError(text)
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not an ISO 8601 date or timestamp: {text!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


EXPORT_FILTERS = ("model", "intent", "project", "request_id", "otel_trace_id")
"""The context keys an export can be narrowed to (exact match)."""


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """Everything that decides an export's lines. ``resolved()`` fixes the window.

    ``since``/``until`` must pass :func:`~feedback_asgi.storage.base.check_time` (kept in
    UTC) and the filters (:data:`EXPORT_FILTERS`) :func:`~feedback_asgi.storage.base.key_problem`;
    anything else raises ``FeedbackValidationError`` naming the field.

    ``positive_rating``/``negative_rating``: a rating at or above / at or below counts as
    a positive / negative vote (between them: neutral). Neutral feedback (thumbs without a
    direction, text, middle ratings) is left out unless ``include_neutral``.
    """

    kind: ExportKind = ExportKind.FINETUNE
    format: ExportFormat = ExportFormat.DEFAULT
    since: datetime | None = None
    until: datetime | None = None
    model: str | None = None
    intent: str | None = None
    project: str | None = None
    request_id: str | None = None
    """Only feedback on responses to this client request id (``X-Request-ID``)."""
    otel_trace_id: str | None = None
    """Only feedback on responses within this OpenTelemetry trace."""
    positive_weight: float = 2.0
    negative_weight: float = 0.5
    neutral_weight: float = 1.0
    include_neutral: bool = False
    positive_rating: float = 4.0
    negative_rating: float = 2.0
    batch_size: int = 1000

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ExportKind(self.kind))
        object.__setattr__(self, "format", ExportFormat(self.format))
        for name in ("since", "until"):
            moment = getattr(self, name)
            if moment is not None:  # in range and in UTC, or a validation error naming it
                object.__setattr__(self, name, check_time(name, moment))
        for name in EXPORT_FILTERS:
            value = getattr(self, name)
            problem = key_problem(value) if isinstance(value, str) else None
            if problem is not None:  # no stored item can match it
                raise FeedbackValidationError.for_field(name, problem)
        if self.format is ExportFormat.OPENAI and self.kind not in _OPENAI_KINDS:
            raise FeedbackValidationError.for_field(
                "format", f"the openai format exists for finetune and preferences, not {self.kind}"
            )
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise FeedbackValidationError.for_field("since", "must be earlier than until")
        if self.negative_rating >= self.positive_rating:
            raise FeedbackValidationError.for_field(
                "negative_rating", "must be lower than positive_rating"
            )
        if self.batch_size < 1:
            raise FeedbackValidationError.for_field("batch_size", "must be at least 1")

    def resolved(self, now: datetime | None = None) -> ExportOptions:
        """A copy with a fixed window: ``until`` defaults to now, ``since`` to 7 days before.

        Fixing ``until`` up front makes the export a snapshot: feedback arriving while it
        runs is not half included.
        """
        until = self.until or now or utc_now()
        since = self.since or until - DEFAULT_WINDOW
        return replace(self, since=since, until=until)

    @classmethod
    def from_mapping(cls, kind: str, values: Mapping[str, Any]) -> ExportOptions:
        """Options from query parameters or a JSON body (strings accepted for every value).

        Raises ``FeedbackValidationError`` naming the field that is wrong.
        """
        known = {
            "format", "since", "until", *EXPORT_FILTERS, "positive_weight",
            "negative_weight", "neutral_weight", "include_neutral", "positive_rating",
            "negative_rating",
        }
        unknown = sorted(set(values) - known)
        if unknown:
            raise FeedbackValidationError.for_field(unknown[0], "unknown export option")
        try:
            kind_value = ExportKind(kind)
        except ValueError:
            raise FeedbackValidationError.for_field(
                "kind", f"one of {', '.join(k.value for k in ExportKind)}"
            ) from None
        kwargs: dict[str, Any] = {"kind": kind_value}
        for name in EXPORT_FILTERS:
            if values.get(name) is not None:
                kwargs[name] = _text(name, values[name])
        if values.get("format") is not None:
            try:
                kwargs["format"] = ExportFormat(_text("format", values["format"]))
            except ValueError:
                raise FeedbackValidationError.for_field("format", "default or openai") from None
        for name in ("since", "until"):
            if values.get(name) is not None:
                try:
                    kwargs[name] = parse_moment(_text(name, values[name]))
                except ValueError as exc:
                    raise FeedbackValidationError.for_field(name, str(exc)) from None
        for name in ("positive_weight", "negative_weight", "neutral_weight",
                     "positive_rating", "negative_rating"):
            if values.get(name) is not None:
                kwargs[name] = _number(name, values[name])
        if values.get("include_neutral") is not None:
            kwargs["include_neutral"] = _flag("include_neutral", values["include_neutral"])
        return cls(**kwargs)


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise FeedbackValidationError.for_field(name, "a non-empty string (at most 255 chars)")
    problem = key_problem(value)
    if problem is not None:
        raise FeedbackValidationError.for_field(name, problem)
    return value


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise FeedbackValidationError.for_field(name, "a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise FeedbackValidationError.for_field(name, "a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise FeedbackValidationError.for_field(name, "a finite number")
    return number


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return value.lower() in ("1", "true", "yes", "on")
    raise FeedbackValidationError.for_field(name, "true or false")


@dataclass(slots=True)
class ExportReport:
    """What an export read and wrote; ``skipped`` counts items left out, by reason.

    Reasons: ``no_exchange`` (no input or no output to build the example from),
    ``neutral``, ``not_applicable`` (a kind this export does not use), ``negative``
    (``--format openai`` finetune leaves negatives out), ``unpaired`` (a vote with no
    opposite vote on another answer to the same prompt), ``filtered`` (a filter of
    :data:`EXPORT_FILTERS` did not match).
    """

    scanned: int = 0
    written: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"scanned": self.scanned, "written": self.written,
                "skipped": dict(sorted(self.skipped.items()))}
