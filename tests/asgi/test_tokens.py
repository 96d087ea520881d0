"""Token signing and verification: pure, no I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging

import pytest

from feedback_asgi.core import tokens
from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.core.result import Err, Ok
from feedback_asgi.core.tokens import TokenClaims, TokenError, TokenSigner, key_id

KEY = b"k" * 40
OTHER = b"o" * 40


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_round_trip_gives_the_claims() -> None:
    clock = Clock()
    signer = TokenSigner([KEY], ttl_seconds=60, clock=clock)
    token = signer.sign("trace-1.a", "session-9")
    result = signer.verify(token, "trace-1.a")
    digest = signer.subject_digest("session-9")
    assert result == Ok(TokenClaims("trace-1.a", digest, int(clock.now) + 60, key_id(KEY)))
    assert signer.issued_to(result.unwrap(), "session-9")
    assert not signer.issued_to(result.unwrap(), "session-8")


def test_signature_is_standard_hmac_sha256_and_the_subject_a_keyed_digest() -> None:
    signer = TokenSigner([KEY], clock=Clock())
    token = signer.sign("abc", "user")
    version, kid, expiry, trace, subject, signature = token.split(".")
    assert version == "v2"
    message = f"{version}\x00{kid}\x00{trace}\x00{subject}\x00{expiry}".encode()
    assert signature == _b64(hmac.digest(KEY, message, hashlib.sha256))
    subject_key = hmac.digest(KEY, b"feedback-asgi subject digest\x00", hashlib.sha256)
    assert subject == _b64(hmac.digest(subject_key, b"user", hashlib.sha256)[:16])
    long_key = b"x" * 100  # longer than SHA-256's block: hashed first, as RFC 2104 says
    long_signer = TokenSigner([long_key], clock=Clock())
    parts = long_signer.sign("abc").split(".")
    message = f"v2\x00{parts[1]}\x00abc\x00\x00{parts[2]}".encode()
    assert parts[-1] == _b64(hmac.digest(long_key, message, hashlib.sha256))


def test_a_token_tells_nothing_about_its_subject() -> None:
    signer = TokenSigner([KEY])
    for subject in ("session:sess-42", "user:alice", "user:\u00e4"):
        token = signer.sign("t1", subject)
        for part in (subject, subject.split(":")[1], _b64(subject.encode()),
                     _b64(subject.split(":")[1].encode())):
            assert part not in token
    # the digest depends on the key: another deployment's tokens do not link people
    assert TokenSigner([OTHER]).subject_digest("user:alice") != signer.subject_digest(
        "user:alice")


def test_anonymous_subject_is_empty() -> None:
    signer = TokenSigner([KEY])
    result = signer.verify(signer.sign("t1"), "t1")
    assert isinstance(result, Ok)
    assert result.value.subject_digest == ""
    assert result.value.anonymous
    assert not signer.issued_to(result.value, "")


@pytest.mark.parametrize(
    ("token", "error"),
    [
        (None, TokenError.MISSING),
        ("", TokenError.MISSING),
        ("garbage", TokenError.MALFORMED),
        ("v3.a.1.t..sig", TokenError.MALFORMED),
        ("v2.abcd.notanumber.t..sig", TokenError.MALFORMED),
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
    parts[4] = signer.subject_digest("someone-else")
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


def test_subject_with_any_characters_is_recognised() -> None:
    signer = TokenSigner([KEY])
    subject = "user:\u00e4.b/c d\n\ud800"
    result = signer.verify(signer.sign("t.x", subject), "t.x")
    assert isinstance(result, Ok)
    assert signer.issued_to(result.value, subject)
    assert result.value.trace_id == "t.x"


def test_a_retired_key_still_recognises_its_subjects() -> None:
    old = TokenSigner([OTHER])
    token = old.sign("t", "session:s")
    rotated = TokenSigner([KEY, OTHER])
    claims = rotated.verify(token, "t").unwrap()
    assert rotated.issued_to(claims, "session:s")
    assert claims.subject_digest == rotated.subject_digest("session:s", key_id(OTHER))
    assert claims.subject_digest != rotated.subject_digest("session:s")


def test_signing_refuses_a_trace_id_no_post_could_name() -> None:
    signer = TokenSigner([KEY])
    for trace_id in ("", "a" * 65, "a b", "t\x00", "caf\u00e9"):
        with pytest.raises(ValueError, match="trace id"):
            signer.sign(trace_id)


def _tamper(token: str, index: int, value: str) -> str:
    parts = token.split(".")
    parts[index] = value
    return ".".join(parts)


@pytest.mark.parametrize(
    "spelling",
    [
        lambda t, e: _tamper(t, 2, "0" + e),  # a leading zero: the same number, another text
        lambda t, e: _tamper(t, 2, e.translate(str.maketrans("0123456789", "\u0660\u0661\u0662"
                                                              "\u0663\u0664\u0665\u0666\u0667"
                                                              "\u0668\u0669"))),
        lambda t, e: _tamper(t, 2, e[:-1] + "\u00b2"),  # superscript two
        lambda t, e: _tamper(t, 2, "+" + e),
        lambda t, e: _tamper(t, 2, e + " "),
        lambda t, e: _tamper(t, 2, "\uff11" + e[1:]),  # fullwidth digit one
        lambda t, e: t[: t.rindex(".") + 1] + t[t.rindex(".") + 1 :] + "=",  # padding
        lambda t, e: t[:-1] + {"A": "B", "Q": "R", "g": "h", "w": "x"}.get(t[-1], "B"),
        lambda t, e: t.replace("v2.", "V2.", 1),
        lambda t, e: _tamper(t, 1, t.split(".")[1].upper()),
    ],
)
def test_every_non_canonical_spelling_is_malformed(spelling: object) -> None:
    signer = TokenSigner([b"k" * 40], clock=Clock())
    token = signer.sign("trace-a", "session:s")
    expiry = token.split(".")[2]
    assert isinstance(signer.verify(token, "trace-a"), Ok)
    changed = spelling(token, expiry)  # type: ignore[operator]
    assert changed != token
    assert signer.verify(changed, "trace-a") == Err(TokenError.MALFORMED)
