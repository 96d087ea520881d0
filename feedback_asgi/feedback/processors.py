"""Processors: one per feedback kind, each validating and normalising a submitted payload.

A payload is a mapping with ``"value"`` and an optional ``"comment"``. Every path that takes
user feedback (collector, service, HTTP endpoint) goes through
:meth:`FeedbackProcessorRegistry.process`, so validation is the same everywhere. Processors
never raise on bad input: they return ``Err(FeedbackValidationError)`` naming the field
(``value``, ``value.original``, ``comment``, ``type``, ...).

A custom kind is a processor registered under a new name::

    class PreferenceProcessor:
        def process(self, payload, config):
            choice = payload.get("value")
            if choice not in ("a", "b"):
                return Err(FeedbackValidationError.for_field("value", "must be 'a' or 'b'"))
            return Ok(ProcessedFeedback("preference", choice))

    registry.register("preference", PreferenceProcessor())
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from numbers import Real
from typing import Any, Protocol, TypeAlias, runtime_checkable

from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.core.exceptions import FeedbackValidationError
from feedback_asgi.core.records import FeedbackKind, FeedbackType, normalize_kind, string_problem
from feedback_asgi.core.result import Err, Ok, Result

__all__ = [
    "MAX_JSON_DEPTH",
    "CorrectionProcessor",
    "FeedbackProcessor",
    "FeedbackProcessorRegistry",
    "LabelProcessor",
    "ProcessResult",
    "ProcessedFeedback",
    "RatingProcessor",
    "TextProcessor",
    "ThumbsProcessor",
    "json_problem",
    "normalize_comment",
    "string_problem",
]

logger = logging.getLogger(__name__)

MAX_JSON_DEPTH = 32
"""Deepest nesting of lists/objects accepted in a label, a context or metadata."""


@dataclass(frozen=True, slots=True)
class ProcessedFeedback:
    """A validated, normalised submission, ready to become a ``FeedbackItem``.

    ``metadata`` holds what the processor derived besides the value; the registry adds the
    normalised ``comment`` to it.
    """

    kind: FeedbackKind
    value: Any
    metadata: dict[str, Any] = field(default_factory=dict)


ProcessResult: TypeAlias = Result[ProcessedFeedback, FeedbackValidationError]


@runtime_checkable
class FeedbackProcessor(Protocol):
    """Validates and normalises one kind of feedback. Must not raise on bad input."""

    def process(self, payload: Mapping[str, Any], config: FeedbackConfig) -> ProcessResult:
        """``Ok(ProcessedFeedback)``, or ``Err(FeedbackValidationError)`` naming the field."""
        ...


ProcessorFunction: TypeAlias = Callable[[Mapping[str, Any], FeedbackConfig], ProcessResult]


def _invalid(field_name: str, problem: str) -> Err[FeedbackValidationError]:
    return Err(FeedbackValidationError.for_field(field_name, problem))


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Real):
        return "a number"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


# shared checks

_MAX_INT_BITS = 14_000  # about the 4,300 digits Python will convert to text


def json_problem(
    value: object, *, max_depth: int = MAX_JSON_DEPTH, max_bytes: int | None = None
) -> str | None:
    """What makes ``value`` unfit to be stored as JSON, or ``None`` when it is fine.

    Accepts ``None``, booleans, integers, finite floats, strings, lists and dicts with string
    keys, nested at most ``max_depth`` deep and, with ``max_bytes``, at most that many UTF-8
    bytes once encoded compactly. Iterative, so hostile nesting cannot exhaust the stack.
    """
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        current, depth = stack.pop()
        if current is None or isinstance(current, bool):
            continue
        if isinstance(current, str):
            problem = string_problem(current)
            if problem is not None:
                return problem
            continue
        if isinstance(current, int):
            if current.bit_length() > _MAX_INT_BITS:
                return "must not contain integers that large"
            continue
        if isinstance(current, float):
            if not math.isfinite(current):
                return "must not contain NaN or infinite numbers"
            continue
        if depth >= max_depth:
            return f"is nested deeper than {max_depth} levels"
        if isinstance(current, list):
            stack.extend((child, depth + 1) for child in current)
        elif isinstance(current, dict):
            for key, child in current.items():
                if not isinstance(key, str):
                    return "must only have string keys in objects"
                problem = string_problem(key)
                if problem is not None:
                    return problem
                stack.append((child, depth + 1))
        else:
            return f"must be JSON (objects, lists, strings, numbers, booleans, null), not {type(current).__name__}"
    if max_bytes is not None:
        try:
            encoded = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        except (ValueError, TypeError, RecursionError):
            # e.g. an integer beyond Python's int-to-str digit limit
            return "cannot be encoded as JSON"
        size = len(encoded.encode("utf-8"))
        if size > max_bytes:
            return f"is {size} bytes as JSON, more than the {max_bytes} allowed"
    return None


def normalize_comment(
    comment: object, config: FeedbackConfig
) -> Result[str | None, FeedbackValidationError]:
    """A comment stripped of surrounding whitespace; blank means ``None``."""
    if comment is None:
        return Ok(None)
    if not isinstance(comment, str):
        return _invalid("comment", f"must be a string, not {_type_name(comment)}")
    stripped = comment.strip()
    problem = string_problem(stripped)
    if problem is not None:
        return _invalid("comment", problem)
    if len(stripped) > config.max_text_length:
        return _invalid("comment", f"must be at most {config.max_text_length} characters")
    return Ok(stripped or None)


def _check_text(
    value: object, field_name: str, config: FeedbackConfig, *, allow_blank: bool = False
) -> FeedbackValidationError | None:
    if not isinstance(value, str):
        return FeedbackValidationError.for_field(
            field_name, f"must be a string, not {_type_name(value)}"
        )
    if not allow_blank and not value.strip():
        return FeedbackValidationError.for_field(field_name, "must not be empty")
    problem = string_problem(value)
    if problem is not None:
        return FeedbackValidationError.for_field(field_name, problem)
    if len(value) > config.max_text_length:
        return FeedbackValidationError.for_field(
            field_name, f"must be at most {config.max_text_length} characters"
        )
    return None


def _object_value(
    payload: Mapping[str, Any], required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> Result[Mapping[str, Any], FeedbackValidationError]:
    value = payload.get("value")
    if not isinstance(value, Mapping):
        keys = ", ".join(repr(k) for k in (*required, *optional))
        return _invalid("value", f"must be an object with {keys}, not {_type_name(value)}")
    unknown = sorted(repr(k) for k in value if k not in required and k not in optional)
    if unknown:
        return _invalid("value", f"unexpected keys {', '.join(unknown)}")
    for key in required:
        if key not in value:
            return _invalid(f"value.{key}", "is required")
    return Ok(value)


# built-in processors


class RatingProcessor:
    """A finite number within ``[rating_min, rating_max]``, stored as a float."""

    def process(self, payload: Mapping[str, Any], config: FeedbackConfig) -> ProcessResult:
        """Validate ``payload["value"]``."""
        value = payload.get("value")
        if value is None:
            return _invalid("value", "is required")
        if isinstance(value, bool) or not isinstance(value, int | float):
            return _invalid("value", f"must be a number, not {_type_name(value)}")
        try:
            finite = math.isfinite(value)
            # compare before converting: float() of a huge int overflows
            number = float(value) if config.rating_min <= value <= config.rating_max else None
        except (ArithmeticError, TypeError, ValueError):
            finite, number = True, None
        if not finite:
            return _invalid("value", "must be a finite number")
        if number is None:
            return _invalid(
                "value", f"must be between {config.rating_min:g} and {config.rating_max:g}"
            )
        return Ok(ProcessedFeedback(FeedbackType.RATING, number))


_THUMBS_WORDS = {"up": 1, "down": -1}


class ThumbsProcessor:
    """``"up"``/``"down"``/``1``/``-1``/``true``/``false`` to +1/-1; ``null`` needs a comment."""

    def process(self, payload: Mapping[str, Any], config: FeedbackConfig) -> ProcessResult:
        """Validate ``payload["value"]``; ``payload["comment"]`` is the normalised comment."""
        value = payload.get("value")
        vote: int | None
        if value is None:
            comment = payload.get("comment")
            if not isinstance(comment, str) or not comment.strip():
                return _invalid("value", "null (a neutral vote) needs a non-empty comment")
            vote = None
        elif isinstance(value, bool):
            vote = 1 if value else -1
        elif isinstance(value, str):
            word = value.strip().lower()
            if word not in _THUMBS_WORDS:
                return _invalid("value", "must be 'up', 'down', 1, -1, true, false or null")
            vote = _THUMBS_WORDS[word]
        elif isinstance(value, int | float) and value in (1, -1):
            vote = int(value)
        else:
            return _invalid("value", "must be 'up', 'down', 1, -1, true, false or null")
        return Ok(ProcessedFeedback(FeedbackType.THUMBS, vote))


class TextProcessor:
    """Free text: not blank, at most ``max_text_length`` characters; stored stripped."""

    def process(self, payload: Mapping[str, Any], config: FeedbackConfig) -> ProcessResult:
        """Validate ``payload["value"]``."""
        value = payload.get("value")
        if value is None:
            return _invalid("value", "is required")
        if not isinstance(value, str):
            return _invalid("value", f"must be a string, not {_type_name(value)}")
        text = value.strip()
        problem = _check_text(text, "value", config)
        if problem is not None:
            return Err(problem)
        return Ok(ProcessedFeedback(FeedbackType.TEXT, text))


class CorrectionProcessor:
    """``{"original": str, "corrected": str}``; they must differ; each within the text limit."""

    def process(self, payload: Mapping[str, Any], config: FeedbackConfig) -> ProcessResult:
        """Validate ``payload["value"]``; the strings are stored as given."""
        match _object_value(payload, ("original", "corrected")):
            case Err(error):
                return Err(error)
            case Ok(value):
                pass
        original, corrected = value["original"], value["corrected"]
        problem = _check_text(original, "value.original", config, allow_blank=True)
        problem = problem or _check_text(corrected, "value.corrected", config)
        if problem is not None:
            return Err(problem)
        if original == corrected:
            return _invalid("value.corrected", "must differ from the original")
        return Ok(
            ProcessedFeedback(
                FeedbackType.CORRECTION, {"original": original, "corrected": corrected}
            )
        )


class LabelProcessor:
    """``{"label": <JSON>, "input": <JSON>}``; each at most ``max_label_bytes`` as JSON."""

    def process(self, payload: Mapping[str, Any], config: FeedbackConfig) -> ProcessResult:
        """Validate ``payload["value"]``; ``label`` is required and not null."""
        match _object_value(payload, ("label",), ("input",)):
            case Err(error):
                return Err(error)
            case Ok(value):
                pass
        label, input_data = value["label"], value.get("input")
        if label is None:
            return _invalid("value.label", "must not be null")
        for name, part in (("value.label", label), ("value.input", input_data)):
            problem = json_problem(part, max_bytes=config.max_label_bytes)
            if problem is not None:
                return _invalid(name, problem)
        return Ok(ProcessedFeedback(FeedbackType.LABEL, {"label": label, "input": input_data}))


class _FunctionProcessor:
    __slots__ = ("function",)

    def __init__(self, function: ProcessorFunction) -> None:
        self.function = function

    def process(self, payload: Mapping[str, Any], config: FeedbackConfig) -> ProcessResult:
        return self.function(payload, config)


_DEFAULTS: dict[FeedbackType, Callable[[], FeedbackProcessor]] = {
    FeedbackType.RATING: RatingProcessor,
    FeedbackType.THUMBS: ThumbsProcessor,
    FeedbackType.TEXT: TextProcessor,
    FeedbackType.CORRECTION: CorrectionProcessor,
    FeedbackType.LABEL: LabelProcessor,
}


class FeedbackProcessorRegistry:
    """Maps each feedback kind to its processor; the one entry point for validation."""

    def __init__(self, config: FeedbackConfig | None = None) -> None:
        self.config = config if config is not None else FeedbackConfig()
        self._processors: dict[FeedbackKind, FeedbackProcessor] = {}

    @classmethod
    def with_defaults(cls, config: FeedbackConfig | None = None) -> FeedbackProcessorRegistry:
        """A registry with the five built-in kinds."""
        registry = cls(config)
        for kind, factory in _DEFAULTS.items():
            registry.register(kind, factory())
        return registry

    def register(
        self, kind: FeedbackKind, processor: FeedbackProcessor | ProcessorFunction
    ) -> None:
        """Handle ``kind`` with ``processor`` (an object with ``process`` or a function).

        A new name is a custom kind; registering a built-in kind replaces its processor.
        Raises ``ValueError`` for a kind that is not a lowercase identifier.
        """
        name = normalize_kind(kind)
        if not isinstance(processor, FeedbackProcessor):
            if not callable(processor):
                raise TypeError("a processor needs a process(payload, config) method")
            processor = _FunctionProcessor(processor)
        self._processors[name] = processor

    def kinds(self) -> list[FeedbackKind]:
        """The registered kinds, in registration order."""
        return list(self._processors)

    def get(self, kind: FeedbackKind) -> FeedbackProcessor | None:
        """The processor of ``kind``, or ``None``."""
        try:
            return self._processors.get(normalize_kind(kind))
        except ValueError:
            return None

    def __contains__(self, kind: object) -> bool:
        return isinstance(kind, str) and self.get(kind) is not None

    def _unknown_kind(self, kind: object) -> Err[FeedbackValidationError]:
        known = ", ".join(str(k) for k in self._processors) or "none registered"
        if not isinstance(kind, str):
            return _invalid("type", f"must be a string; known types: {known}")
        return _invalid("type", f"unknown feedback type {kind[:40]!r}; known types: {known}")

    def process(self, kind: object, payload: object) -> ProcessResult:
        """Validate ``payload`` (``{"value": ..., "comment": ...}``) as feedback of ``kind``.

        Never raises: unknown kinds, non-mapping payloads, bad comments and bad values all
        come back as ``Err(FeedbackValidationError)`` naming the field. The returned
        ``kind`` is always the registered one; the normalised comment is in
        ``metadata["comment"]`` when there is one.
        """
        if not isinstance(kind, str):
            return self._unknown_kind(kind)
        processor = self.get(kind)
        if processor is None:
            return self._unknown_kind(kind)
        name = normalize_kind(kind)
        if not isinstance(payload, Mapping):
            return _invalid("payload", f"must be an object, not {_type_name(payload)}")
        match normalize_comment(payload.get("comment"), self.config):
            case Err(error):
                return Err(error)
            case Ok(comment):
                pass
        clean = {"value": payload.get("value"), "comment": comment}
        try:
            result = processor.process(clean, self.config)
        except FeedbackValidationError as raised:
            return Err(raised)
        except Exception:
            # a custom processor's bug must not turn bad input into a 500
            logger.exception("feedback processor for %r raised", name)
            return _invalid("value", f"was rejected by the {name} processor")
        match result:
            case Ok(ProcessedFeedback() as processed):
                metadata = dict(processed.metadata)
                if comment is not None:
                    metadata["comment"] = comment
                return Ok(replace(processed, kind=name, metadata=metadata))
            case Err(FeedbackValidationError() as rejected):
                return Err(rejected)
        logger.error("feedback processor for %r returned %r", name, type(result).__name__)
        return _invalid("value", f"was rejected by the {name} processor")
