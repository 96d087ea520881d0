from __future__ import annotations

import os

import pytest
from pydantic import SecretStr, ValidationError

from feedback_asgi.core.config import ENV_PREFIX, ConfigIssue, FeedbackConfig
from feedback_asgi.core.exceptions import ConfigurationError, FeedbackError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No FEEDBACK_ASGI_* or WEB_CONCURRENCY from the machine leaks into these tests."""
    for name in list(os.environ):
        if name.upper().startswith(ENV_PREFIX) or name == "WEB_CONCURRENCY":
            monkeypatch.delenv(name)


def test_defaults() -> None:
    config = FeedbackConfig()
    assert config.enabled is True
    assert config.database_url == "sqlite+aiosqlite:///./feedback.db"
    assert config.redis_url is None
    assert config.secret_key is None
    assert config.path == "/feedback"
    assert (config.rating_min, config.rating_max) == (1.0, 5.0)
    assert config.max_text_length == 10_000
    assert config.max_payload_bytes == 65_536
    assert config.require_comment_for_negative is False
    assert config.token_ttl_seconds == 86_400
    assert config.capture_request_limit == config.capture_response_limit == 65_536


def test_keyword_arguments() -> None:
    config = FeedbackConfig(
        rating_min=0, rating_max=1, secret_key="k" * 40, capture_methods=["get", "post"]
    )
    assert (config.rating_min, config.rating_max) == (0.0, 1.0)
    assert isinstance(config.secret_key, SecretStr)
    assert "k" * 40 not in repr(config)
    assert config.capture_methods == ["GET", "POST"]


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEEDBACK_ASGI_ENABLED", "false")
    monkeypatch.setenv("FEEDBACK_ASGI_RATING_MAX", "10")
    monkeypatch.setenv("FEEDBACK_ASGI_DATABASE_URL", "postgresql+asyncpg://db/feedback")
    monkeypatch.setenv("FEEDBACK_ASGI_ALLOWED_ORIGINS", '["https://app.example"]')
    monkeypatch.setenv("feedback_asgi_max_text_length", "500")  # case-insensitive
    for config in (FeedbackConfig(), FeedbackConfig.from_env()):
        assert config.enabled is False
        assert config.rating_max == 10.0
        assert config.database_url == "postgresql+asyncpg://db/feedback"
        assert config.allowed_origins == ["https://app.example"]
        assert config.max_text_length == 500


def test_keyword_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEEDBACK_ASGI_RATING_MAX", "10")
    assert FeedbackConfig(rating_max=3).rating_max == 3.0


def test_from_mapping_with_the_environment_overriding(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {"rating_max": 7, "path": "/fb", "require_comment_for_negative": True}
    config = FeedbackConfig.from_mapping(values)
    assert (config.rating_max, config.path, config.require_comment_for_negative) == (
        7.0, "/fb", True
    )
    monkeypatch.setenv("FEEDBACK_ASGI_RATING_MAX", "9")
    overridden = FeedbackConfig.from_mapping(values)
    assert overridden.rating_max == 9.0
    assert overridden.path == "/fb"
    assert values == {"rating_max": 7, "path": "/fb", "require_comment_for_negative": True}


def test_config_is_frozen() -> None:
    config = FeedbackConfig()
    with pytest.raises(ValidationError):
        config.enabled = False  # type: ignore[misc]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RATING_MIN", "abc"),
        ("MAX_TEXT_LENGTH", "0"),
        ("MAX_PAYLOAD_BYTES", "10"),
        ("PATH", "feedback"),
        ("PATH", "/feedback/"),
        ("DATABASE_URL", "feedback.db"),
        ("ENABLED", "maybe"),
        ("RATING_MAX", "nan"),
        ("TOKEN_TTL_SECONDS", "-5"),
        ("ALLOWED_ORIGINS", "not json"),
    ],
)
def test_invalid_environment_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(f"FEEDBACK_ASGI_{variable}", value)
    with pytest.raises(ConfigurationError) as caught:
        FeedbackConfig()
    assert f"FEEDBACK_ASGI_{variable}" in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "variable"),
    [
        ({"rating_min": float("inf")}, "FEEDBACK_ASGI_RATING_MIN"),
        ({"max_label_bytes": 0}, "FEEDBACK_ASGI_MAX_LABEL_BYTES"),
        ({"group_commit_max_batch": 0}, "FEEDBACK_ASGI_GROUP_COMMIT_MAX_BATCH"),
        ({"not_a_setting": 1}, "FEEDBACK_ASGI_NOT_A_SETTING"),
        ({"rating_min": 5, "rating_max": 1}, "FEEDBACK_ASGI_RATING_MIN"),
        ({"rating_min": 2, "rating_max": 2}, "FEEDBACK_ASGI_RATING_MAX"),
    ],
)
def test_invalid_keyword_values_name_the_variable(kwargs: dict[str, object], variable: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        FeedbackConfig(**kwargs)  # type: ignore[arg-type]
    assert variable in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, FeedbackError)
    assert caught.value.code == "configuration_error"


def test_invalid_mapping_values_raise_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="FEEDBACK_ASGI_MAX_TEXT_LENGTH"):
        FeedbackConfig.from_mapping({"max_text_length": "lots"})


def test_secret_values_put_the_current_key_first() -> None:
    config = FeedbackConfig(secret_key="new", previous_secret_keys=["old1", "old2"])
    assert config.secret_values() == [b"new", b"old1", b"old2"]
    assert FeedbackConfig().secret_values() == []


# validate_for_environment


def settings_of(issues: list[ConfigIssue]) -> set[tuple[str, str]]:
    return {(issue.level, issue.setting) for issue in issues}


def test_production_defaults_are_flagged() -> None:
    issues = FeedbackConfig().validate_for_environment("production")
    assert settings_of(issues) == {
        ("error", "secret_key"),
        ("warning", "database_url"),
        ("warning", "allowed_origins"),
    }
    secret = next(i for i in issues if i.setting == "secret_key")
    assert str(secret).startswith("error: FEEDBACK_ASGI_SECRET_KEY: ")


def test_a_safe_production_config_has_no_findings() -> None:
    config = FeedbackConfig(
        secret_key="s" * 40,
        database_url="postgresql+asyncpg://db/feedback",
        redis_url="redis://cache:6379/0",
        allowed_origins=["https://app.example"],
    )
    assert config.validate_for_environment("production", workers=4) == []


def test_development_is_lenient() -> None:
    assert FeedbackConfig().validate_for_environment("development") == []


def test_sqlite_with_several_workers_and_no_redis() -> None:
    issues = FeedbackConfig(secret_key="s" * 40).validate_for_environment(
        "development", workers=4
    )
    assert settings_of(issues) == {("warning", "database_url"), ("warning", "redis_url")}
    assert any("4 worker" in i.message for i in issues)


def test_workers_default_to_web_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    issues = FeedbackConfig().validate_for_environment("development")
    assert ("warning", "redis_url") in settings_of(issues)
    monkeypatch.setenv("WEB_CONCURRENCY", "lots")
    assert FeedbackConfig().validate_for_environment("development") == []


def test_short_secret_key_is_a_warning_anywhere() -> None:
    issues = FeedbackConfig(secret_key="short").validate_for_environment("development")
    assert settings_of(issues) == {("warning", "secret_key")}


def test_exempting_a_built_in_secret_name_in_production_is_a_warning() -> None:
    base = {"secret_key": "s" * 40, "database_url": "postgresql+asyncpg://db/f",
            "allowed_origins": ["https://a.example"]}
    # the built-in names are always redacted: no extra field is needed
    assert FeedbackConfig(**base, redact_fields=[]).validate_for_environment("production") == []
    harmless = FeedbackConfig(**base, redact_exempt_fields=["tokens", "author"])
    assert harmless.validate_for_environment("production") == []
    issues = FeedbackConfig(
        **base, redact_exempt_fields=["Session-ID", "tokens"]
    ).validate_for_environment("production")
    assert settings_of(issues) == {("warning", "redact_exempt_fields")}
    assert "Session-ID" in str(issues[0])
    no_capture = FeedbackConfig(
        **base, redact_exempt_fields=["password"], capture_request_limit=0,
        capture_response_limit=0,
    )
    assert no_capture.validate_for_environment("production") == []
