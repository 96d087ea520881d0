"""The exception hierarchy.

``FeedbackError`` is the base of everything this library raises on purpose; each error
has a stable ``code`` that HTTP adapters put in the JSON error body
``{"error": {"code", "message", "fields"}}``.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "ConfigurationError",
    "FeedbackError",
    "FeedbackProcessingError",
    "FeedbackValidationError",
    "StorageUnavailableError",
]


class FeedbackError(Exception):
    """Base class of every error raised by feedback-asgi."""

    code: str = "feedback_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, object]:
        """The JSON error body's inner object."""
        return {"code": self.code, "message": self.message, "fields": {}}


class FeedbackProcessingError(FeedbackError):
    """A processor, hook or collector step failed for a reason other than bad input."""

    code = "processing_error"


class FeedbackValidationError(FeedbackError):
    """Input was rejected; ``fields`` maps each offending field to what is wrong with it."""

    code = "validation_error"

    def __init__(self, message: str, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.fields: dict[str, str] = dict(fields or {})

    @classmethod
    def for_field(cls, field: str, problem: str) -> FeedbackValidationError:
        """An error about one field, with a message naming it."""
        return cls(f"{field}: {problem}", {field: problem})

    def to_dict(self) -> dict[str, object]:
        """The JSON error body's inner object, with field details."""
        return {"code": self.code, "message": self.message, "fields": dict(self.fields)}


class StorageUnavailableError(FeedbackError):
    """The database, cache or another storage backend cannot be reached right now."""

    code = "storage_unavailable"


class ConfigurationError(FeedbackError, ValueError):
    """A configuration value is invalid; the message names the setting and its variable."""

    code = "configuration_error"
