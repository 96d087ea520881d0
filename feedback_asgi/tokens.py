"""Signed feedback tokens: proof that a feedback POST refers to an exchange this app served.

A token is ``v1.<key id>.<expiry>.<trace id>.<subject>.<signature>``: the signature is
HMAC-SHA256 over the key id, trace id, subject (the session or user id, base64url; empty
for anonymous callers) and expiry (Unix seconds). Several keys may be accepted at once
(rotation); the first one signs. Verification compares signatures in constant time and
tells apart a missing, malformed, expired, unknown-key, forged and other-trace token.

Without a configured secret every signer in the process shares one random key, and a
warning says so once: tokens then do not survive a restart or reach another worker.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from feedback_asgi.result import Err, Ok, Result

if TYPE_CHECKING:
    from feedback_asgi.config import FeedbackConfig

__all__ = ["TokenClaims", "TokenError", "TokenSigner", "key_id"]

logger = logging.getLogger("feedback_asgi")

_VERSION = "v1"
_MAX_TOKEN_LENGTH = 1024
_process_key: bytes | None = None
_process_key_lock = threading.Lock()


class TokenError(StrEnum):
    """Why a token was rejected."""

    MISSING = "token_missing"
    MALFORMED = "token_malformed"
    EXPIRED = "token_expired"
    UNKNOWN_KEY = "token_unknown_key"
    INVALID_SIGNATURE = "token_invalid"
    WRONG_TRACE = "token_wrong_trace"

    @property
    def http_status(self) -> int:
        """401 for a missing or invalid token, 403 for a valid token of another trace."""
        return 403 if self is TokenError.WRONG_TRACE else 401

    @property
    def message(self) -> str:
        """A short human-readable explanation."""
        return _MESSAGES[self]


_MESSAGES = {
    TokenError.MISSING: "a feedback token is required (X-Feedback-Token header or token field)",
    TokenError.MALFORMED: "the feedback token is malformed",
    TokenError.EXPIRED: "the feedback token has expired",
    TokenError.UNKNOWN_KEY: "the feedback token was signed with a key this server does not know",
    TokenError.INVALID_SIGNATURE: "the feedback token is not valid",
    TokenError.WRONG_TRACE: "the feedback token was issued for another trace",
}


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a valid token says."""

    trace_id: str
    subject: str
    """The session or user id the token was issued to; empty for an anonymous caller."""
    expires_at: int
    """Unix time, in seconds."""
    key_id: str


def key_id(key: bytes) -> str:
    """The public id of a key: 8 hex digits of a hash (never reveals the key)."""
    return hashlib.sha256(b"feedback-asgi key id\x00" + key).hexdigest()[:8]


def _process_random_key() -> bytes:
    global _process_key
    with _process_key_lock:
        if _process_key is None:
            _process_key = secrets.token_bytes(32)
            logger.warning(
                "feedback-asgi: FEEDBACK_ASGI_SECRET_KEY is not set; feedback tokens are signed "
                "with a random per-process key, so they stop working after a restart and are "
                "rejected by other workers. Set FEEDBACK_ASGI_SECRET_KEY in production."
            )
        return _process_key


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


class _HmacSha256:
    """HMAC-SHA256 (RFC 2104) with the key schedule done once: two hash copies per MAC."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\x00")
        self._inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in key))
        self._outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in key))

    def digest(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Signs and verifies feedback tokens.

    ``keys``: the signing key first, then retired keys still accepted. ``None`` or empty
    means the shared random per-process key.
    """

    __slots__ = ("_keys", "_signing_id", "_signing_key", "clock", "random_key", "ttl_seconds")

    def __init__(
        self,
        keys: Sequence[bytes] | None = None,
        *,
        ttl_seconds: int = 86_400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.random_key = not keys
        key_list = list(keys) if keys else [_process_random_key()]
        if any(not key for key in key_list):
            raise ValueError("token keys must not be empty")
        self._keys = {key_id(key): _HmacSha256(key) for key in reversed(key_list)}
        self._signing_key = self._keys[key_id(key_list[0])]
        self._signing_id = key_id(key_list[0])
        self.ttl_seconds = ttl_seconds
        self.clock = clock

    @classmethod
    def from_config(cls, config: FeedbackConfig) -> TokenSigner:
        """A signer using ``secret_key`` then ``previous_secret_keys`` and ``token_ttl_seconds``."""
        return cls(config.secret_values(), ttl_seconds=config.token_ttl_seconds)

    @property
    def key_ids(self) -> list[str]:
        """The ids of the accepted keys; the signing key's first."""
        return [self._signing_id, *(kid for kid in self._keys if kid != self._signing_id)]

    def sign(self, trace_id: str, subject: str = "", *, ttl_seconds: int | None = None) -> str:
        """A token for ``trace_id`` issued to ``subject`` (session or user id, or ``""``)."""
        expires = int(self.clock()) + (self.ttl_seconds if ttl_seconds is None else ttl_seconds)
        encoded_subject = _b64(subject.encode()) if subject else ""
        kid = self._signing_id
        signature = self._signature(self._signing_key, kid, trace_id, encoded_subject, expires)
        return f"{_VERSION}.{kid}.{expires}.{trace_id}.{encoded_subject}.{signature}"

    @staticmethod
    def _signature(key: _HmacSha256, kid: str, trace_id: str, subject: str, expires: int) -> str:
        message = f"{_VERSION}\x00{kid}\x00{trace_id}\x00{subject}\x00{expires}".encode()
        return _b64(key.digest(message))

    def verify(
        self, token: str | None, trace_id: str | None = None
    ) -> Result[TokenClaims, TokenError]:
        """Check ``token``; with ``trace_id``, also that it was issued for that trace."""
        if not token:
            return Err(TokenError.MISSING)
        if not isinstance(token, str) or len(token) > _MAX_TOKEN_LENGTH:
            return Err(TokenError.MALFORMED)
        parts = token.split(".")
        if len(parts) < 6 or parts[0] != _VERSION:
            return Err(TokenError.MALFORMED)
        kid, expiry_text, encoded_subject, signature = parts[1], parts[2], parts[-2], parts[-1]
        token_trace = ".".join(parts[3:-2])
        if not expiry_text.isdigit() or not token_trace or len(expiry_text) > 12:
            return Err(TokenError.MALFORMED)
        key = self._keys.get(kid)
        if key is None:
            return Err(TokenError.UNKNOWN_KEY)
        expires = int(expiry_text)
        expected = self._signature(key, kid, token_trace, encoded_subject, expires)
        if not hmac.compare_digest(expected.encode(), signature.encode("ascii", "replace")):
            return Err(TokenError.INVALID_SIGNATURE)
        if expires < self.clock():
            return Err(TokenError.EXPIRED)
        if trace_id is not None and not hmac.compare_digest(
            token_trace.encode(), trace_id.encode("utf-8", "replace")
        ):
            return Err(TokenError.WRONG_TRACE)
        try:
            subject = _unb64(encoded_subject).decode() if encoded_subject else ""
        except (binascii.Error, ValueError):
            return Err(TokenError.MALFORMED)
        return Ok(TokenClaims(trace_id=token_trace, subject=subject, expires_at=expires,
                              key_id=kid))
