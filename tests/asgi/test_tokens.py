"""Token signing and verification: pure, no I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging

import pytest

from feedback_asgi import tokens
from feedback_asgi.config import FeedbackConfig
from feedback_asgi.result import Err, Ok
from feedback_asgi.tokens import TokenClaims, TokenError, TokenSigner, key_id

KEY = b"k" * 40
OTHER = b"o" * 40


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_round_trip_gives_the_claims() -> None:
    clock = Clock()
    signer = TokenSigner([KEY], ttl_seconds=60, clock=clock)
    token = signer.sign("trace-1.a", "session-9")
    result = signer.verify(token, "trace-1.a")
    assert result == Ok(TokenClaims("trace-1.a", "session-9", int(clock.now) + 60, key_id(KEY)))


def test_signature_is_standard_hmac_sha256() -> None:
    signer = TokenSigner([KEY], clock=Clock())
    token = signer.sign("abc", "user")
    version, kid, expiry, trace, subject, signature = token.split(".")
    message = f"{version}\x00{kid}\x00{trace}\x00{subject}\x00{expiry}".encode()
    expected = base64.urlsafe_b64encode(hmac.digest(KEY, message, hashlib.sha256)).rstrip(b"=")
    assert signature == expected.decode()
    long_key = b"x" * 100  # longer than SHA-256's block: hashed first, as RFC 2104 says
    long_signer = TokenSigner([long_key], clock=Clock())
    parts = long_signer.sign("abc").split(".")
    message = f"v1\x00{parts[1]}\x00abc\x00\x00{parts[2]}".encode()
    expected = base64.urlsafe_b64encode(hmac.digest(long_key, message, hashlib.sha256)).rstrip(b"=")
    assert parts[-1] == expected.decode()


def test_anonymous_subject_is_empty() -> None:
    signer = TokenSigner([KEY])
    result = signer.verify(signer.sign("t1"), "t1")
    assert isinstance(result, Ok)
    assert result.value.subject == ""


@pytest.mark.parametrize(
    ("token", "error"),
    [
        (None, TokenError.MISSING),
        ("", TokenError.MISSING),
        ("garbage", TokenError.MALFORMED),
        ("v2.a.1.t..sig", TokenError.MALFORMED),
        ("v1.abcd.notanumber.t..sig", TokenError.MALFORMED),
        ("v1." + "x" * 2000, TokenError.MALFORMED),
    ],
)
def test_bad_shapes_are_told_apart(token: str | None, error: TokenError) -> None:
    assert TokenSigner([KEY]).verify(token, "t") == Err(error)


def test_expired_other_trace_forged_and_unknown_key() -> None:
    clock = Clock()
    signer = TokenSigner([KEY], ttl_seconds=10, clock=clock)
    token = signer.sign("trace-a", "s")
    assert signer.verify(token, "trace-b") == Err(TokenError.WRONG_TRACE)
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert signer.verify(forged, "trace-a") == Err(TokenError.INVALID_SIGNATURE)
    # changing the subject or the expiry breaks the signature too
    parts = token.split(".")
    parts[4] = base64.urlsafe_b64encode(b"someone-else").rstrip(b"=").decode()
    assert signer.verify(".".join(parts), "trace-a") == Err(TokenError.INVALID_SIGNATURE)
    parts = token.split(".")
    parts[2] = str(int(parts[2]) + 1000)
    assert signer.verify(".".join(parts), "trace-a") == Err(TokenError.INVALID_SIGNATURE)
    assert TokenSigner([OTHER]).verify(token, "trace-a") == Err(TokenError.UNKNOWN_KEY)
    clock.now += 11
    assert signer.verify(token, "trace-a") == Err(TokenError.EXPIRED)
    assert TokenError.WRONG_TRACE.http_status == 403
    assert TokenError.EXPIRED.http_status == 401
    assert "expired" in TokenError.EXPIRED.message


def test_rotation_accepts_previous_keys_and_signs_with_the_first() -> None:
    old = TokenSigner([OTHER])
    old_token = old.sign("t", "s")
    config = FeedbackConfig(secret_key=KEY.decode(), previous_secret_keys=[OTHER.decode()])
    rotated = TokenSigner.from_config(config)
    assert isinstance(rotated.verify(old_token, "t"), Ok)
    new_token = rotated.sign("t", "s")
    assert new_token.split(".")[1] == key_id(KEY)
    assert rotated.key_ids == [key_id(KEY), key_id(OTHER)]
    assert TokenSigner([OTHER]).verify(new_token, "t") == Err(TokenError.UNKNOWN_KEY)


def test_without_secret_a_shared_random_key_and_one_warning(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokens, "_process_key", None)
    with caplog.at_level(logging.WARNING, logger="feedback_asgi"):
        first = TokenSigner()
        second = TokenSigner.from_config(FeedbackConfig(secret_key=None))
    warnings = [r for r in caplog.records if "SECRET_KEY" in r.getMessage()]
    assert len(warnings) == 1
    assert first.random_key
    assert second.random_key
    assert isinstance(second.verify(first.sign("t"), "t"), Ok)


def test_subject_with_any_characters_survives() -> None:
    signer = TokenSigner([KEY])
    subject = "user:ä.b/c d\n"
    result = signer.verify(signer.sign("t.x", subject), "t.x")
    assert isinstance(result, Ok)
    assert result.value.subject == subject
    assert result.value.trace_id == "t.x"
