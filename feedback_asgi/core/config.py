"""``FeedbackConfig``: every setting in one object.

Built from keyword arguments, a plain dict (:meth:`FeedbackConfig.from_mapping`), or
environment variables named ``FEEDBACK_ASGI_<SETTING>`` (``FEEDBACK_ASGI_DATABASE_URL``,
``FEEDBACK_ASGI_SECRET_KEY``, ...). Keyword arguments win over the environment; in
:meth:`from_mapping` the environment wins over the dict (Django's ``FEEDBACK_ASGI``).
An invalid value raises :class:`~feedback_asgi.core.exceptions.ConfigurationError` naming
the setting and its environment variable.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from feedback_asgi.core.exceptions import ConfigurationError
from feedback_asgi.core.secret_rules import is_builtin_secret_name

__all__ = ["ENV_PREFIX", "ConfigIssue", "FeedbackConfig"]

ENV_PREFIX = "FEEDBACK_ASGI_"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./feedback.db"


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One finding of :meth:`FeedbackConfig.validate_for_environment`."""

    level: Literal["error", "warning"]
    setting: str
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {ENV_PREFIX}{self.setting.upper()}: {self.message}"


class FeedbackConfig(BaseSettings):
    """All settings of feedback-asgi, with their defaults."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        frozen=True,
        validate_default=True,
        case_sensitive=False,
    )

    enabled: bool = True
    """Master switch: when false the middleware passes every request through untouched."""

    # storage
    database_url: str = DEFAULT_DATABASE_URL
    """SQLAlchemy async URL of the feedback database (SQLite, PostgreSQL or MariaDB/MySQL)."""
    redis_url: str | None = None
    """Redis URL; when set, exchanges are shared through Redis and reads are cached."""
    redis_key_prefix: str = "feedback_asgi:"
    """Prefix of every Redis key this library writes."""
    cache_ttl_seconds: float = Field(default=30.0, gt=0)
    """Lifetime of cached result lists in Redis."""
    connect_timeout_seconds: float = Field(default=2.0, gt=0)
    """How long a database or Redis connection attempt may take before it counts as down;
    also the deadline of each feedback write and health check on storage."""
    statement_timeout_seconds: float = Field(default=30.0, gt=0)
    """Longest one database statement may run (driver and server limit): the bound of
    reads off the feedback path (stats, export, dashboard)."""
    group_commit_max_batch: int = Field(default=256, ge=1, le=10_000)
    """Most items written in one multi-row INSERT."""
    group_commit_max_wait_ms: float = Field(default=2.0, ge=0, le=1_000)
    """How long a save may wait for companions before its batch is written."""
    create_tables: bool = True
    """Create the tables on first use (turn off when you run ``feedback-asgi db upgrade``)."""

    # exchanges
    exchange_ttl_seconds: float = Field(default=86_400.0, gt=0)
    """How long a captured exchange stays available for feedback to refer to."""
    exchange_max_items: int = Field(default=10_000, ge=1)
    """Capacity of the in-memory exchange store (oldest dropped first)."""
    exchange_queue_size: int = Field(default=10_000, ge=1)
    """Capacity of the queue between requests and the exchange writer for Redis (oldest
    dropped); the in-memory store keeps each exchange at once."""

    # HTTP
    path: str = "/feedback"
    """Where the feedback routes are served by the middleware."""
    allowed_origins: list[str] = Field(default_factory=list)
    """Browser origins allowed to POST feedback; empty means any origin with a valid token."""
    max_payload_bytes: int = Field(default=65_536, ge=256)
    """Largest accepted POST body; larger ones get 413 without being read."""
    rate_limit_per_minute: int | None = Field(default=None, ge=1)
    """POST /feedback requests allowed per minute per client address, and per token subject
    when the token was issued to someone (both limited); unset: no limit."""
    rate_limit_burst: int | None = Field(default=None, ge=1)
    """Posts a client may send at once before the per-minute rate applies; unset: the per-minute figure."""

    # validation
    rating_min: float = 1.0
    """Lowest accepted rating."""
    rating_max: float = 5.0
    """Highest accepted rating."""
    max_text_length: int = Field(default=10_000, ge=1)
    """Longest accepted comment, text or correction, in characters."""
    max_label_bytes: int = Field(default=65_536, ge=1)
    """Largest accepted label or label input, as JSON bytes."""
    require_comment_for_negative: bool = False
    """Reject thumbs-down and lowest ratings that come without a comment."""

    # capture
    capture_request_limit: int = Field(default=65_536, ge=0)
    """Bytes of each request body kept with the exchange (the rest is counted, not kept)."""
    capture_response_limit: int = Field(default=65_536, ge=0)
    """Bytes of each response body kept with the exchange."""
    capture_include: list[str] = Field(default_factory=list)
    """Path patterns (fnmatch) to capture; empty means every path not excluded."""
    capture_exclude: list[str] = Field(
        default_factory=lambda: ["/static/*", "/health", "/healthz", "/readyz", "/favicon.ico"]
    )
    """Path patterns (fnmatch) never captured; the feedback path is always excluded."""
    capture_methods: list[str] = Field(
        default_factory=lambda: ["GET", "POST", "PUT", "PATCH", "DELETE"]
    )
    """HTTP methods whose requests are captured."""
    redact_headers: list[str] = Field(default_factory=list)
    """Header names never captured, besides the ones the built-in key rule drops
    (Authorization, Cookie, X-Auth-Token, Api-Key...)."""
    redact_fields: list[str] = Field(default_factory=list)
    """Key names redacted on top of the built-in ones (matched like them: anywhere in a
    key, ignoring case, ``-``, ``_`` and spaces)."""
    redact_exempt_fields: list[str] = Field(default_factory=list)
    """Key names never redacted by name (whole names, ignoring case, ``-``, ``_`` and
    spaces); their values still go through the value patterns."""
    redact_patterns: list[str] = Field(default_factory=list)
    """Extra regular expressions whose matches are replaced by ``"[redacted]"`` wherever
    text is stored (bodies, headers, comments, metadata)."""
    session_cookie: str | None = None
    """Unsigned cookie whose value identifies the session when no session middleware
    provides one (a client can change it: it only separates well-behaved browsers)."""
    trusted_session_header: str | None = None
    """Header trusted to carry the session id (only behind a proxy that sets it and strips
    what clients send); unset: no request header is ever read as a session."""
    trusted_user_header: str | None = None
    """Header trusted to carry the user id (only behind a proxy that sets it and strips
    what clients send)."""
    sse_feedback_event: bool = True
    """End ``text/event-stream`` responses with an ``event: feedback`` carrying the token."""

    # tokens and access
    secret_key: SecretStr | None = None
    """Key that signs feedback tokens; without it a random per-process key is used."""
    previous_secret_keys: list[SecretStr] = Field(default_factory=list)
    """Retired keys still accepted when verifying tokens (key rotation)."""
    token_ttl_seconds: int = Field(default=86_400, ge=1)
    """How long a feedback token stays valid."""
    admin_token: SecretStr | None = None
    """Bearer token that grants read/admin rights (stats, lists, export, dashboard)."""

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise _configuration_error(exc) from None
        except SettingsError as exc:
            # e.g. a list setting whose environment value is not JSON
            match = re.search(r'field "(\w+)"', str(exc))
            name = match.group(1) if match else "?"
            raise ConfigurationError(
                f"invalid feedback-asgi configuration: {name} ({ENV_PREFIX}{name.upper()}): "
                "could not parse the value (lists are JSON, e.g. '[\"a\", \"b\"]')"
            ) from None

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: str) -> str:
        if not value.startswith("/") or (len(value) > 1 and value.endswith("/")):
            raise ValueError("must start with '/' and not end with '/'")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if "://" not in value:
            raise ValueError("must be a SQLAlchemy URL such as sqlite+aiosqlite:///./feedback.db")
        return value

    @field_validator("rating_min", "rating_max")
    @classmethod
    def _check_finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @field_validator("capture_methods")
    @classmethod
    def _upper_methods(cls, value: list[str]) -> list[str]:
        return [method.upper() for method in value]

    @field_validator("redact_patterns")
    @classmethod
    def _check_redact_patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _check_rating_range(self) -> FeedbackConfig:
        if self.rating_min >= self.rating_max:
            raise ValueError(
                f"rating_min ({ENV_PREFIX}RATING_MIN) must be lower than "
                f"rating_max ({ENV_PREFIX}RATING_MAX)"
            )
        return self

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> FeedbackConfig:
        """Build from a dict (Django's ``FEEDBACK_ASGI``); environment variables override it."""
        from_env = cls()
        merged = dict(values)
        for name in from_env.model_fields_set:
            merged[name] = getattr(from_env, name)
        return cls(**merged)

    @classmethod
    def from_env(cls) -> FeedbackConfig:
        """Build from ``FEEDBACK_ASGI_*`` environment variables alone."""
        return cls()

    def secret_values(self) -> list[bytes]:
        """The signing key first, then the retired keys, as bytes (empty if none is set)."""
        keys = [self.secret_key] if self.secret_key is not None else []
        return [key.get_secret_value().encode() for key in [*keys, *self.previous_secret_keys]]

    def validate_for_environment(
        self, environment: str = "production", *, workers: int | None = None
    ) -> list[ConfigIssue]:
        """What is unsafe or unwise in this config for ``environment``.

        ``workers`` defaults to ``WEB_CONCURRENCY`` from the environment, else 1.
        Returns an empty list when nothing is wrong; ``development`` and ``test`` only get
        the findings that would break things there too.
        """
        production = environment.lower() in {"production", "prod", "staging"}
        if workers is None:
            try:
                workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
            except ValueError:
                workers = 1
        issues: list[ConfigIssue] = []
        if production and self.secret_key is None:
            issues.append(
                ConfigIssue(
                    "error",
                    "secret_key",
                    "not set: tokens are signed with a random per-process key, so tokens "
                    "from one worker or restart are rejected by another",
                )
            )
        elif self.secret_key is not None and len(self.secret_key.get_secret_value()) < 32:
            issues.append(
                ConfigIssue("warning", "secret_key", "shorter than 32 characters")
            )
        is_sqlite = self.database_url.startswith("sqlite")
        if is_sqlite and workers > 1:
            issues.append(
                ConfigIssue(
                    "warning",
                    "database_url",
                    f"SQLite with {workers} worker processes: writes serialise on one file; "
                    "use PostgreSQL or MariaDB",
                )
            )
        if production and is_sqlite:
            issues.append(
                ConfigIssue("warning", "database_url", "SQLite in production: fine for one "
                            "process, but use PostgreSQL or MariaDB for several hosts")
            )
        captures_bodies = self.capture_request_limit > 0 or self.capture_response_limit > 0
        if production and captures_bodies and self.redact_exempt_fields:
            exempted = [name for name in self.redact_exempt_fields if is_builtin_secret_name(name)]
            if exempted:
                issues.append(
                    ConfigIssue(
                        "warning",
                        "redact_exempt_fields",
                        f"{', '.join(exempted)}: built-in secret names, stored unredacted",
                    )
                )
        if workers > 1 and self.redis_url is None:
            issues.append(
                ConfigIssue(
                    "warning",
                    "redis_url",
                    f"{workers} workers without Redis: feedback posted to one worker cannot "
                    "see exchanges captured by another",
                )
            )
        if production and not self.allowed_origins:
            issues.append(
                ConfigIssue(
                    "warning",
                    "allowed_origins",
                    "empty: any web origin holding a token may post feedback",
                )
            )
        return issues


def _configuration_error(exc: ValidationError) -> ConfigurationError:
    problems = []
    for error in exc.errors():
        location = [str(part) for part in error.get("loc", ())]
        message = error.get("msg", "invalid value")
        if not location:
            problems.append(message)
            continue
        variable = f"{ENV_PREFIX}{location[0].upper()}"
        problems.append(f"{'.'.join(location)} ({variable}): {message}")
    return ConfigurationError("invalid feedback-asgi configuration: " + "; ".join(problems))
