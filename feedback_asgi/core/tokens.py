"""Signed feedback tokens: proof that a feedback POST refers to an exchange this app served.

A token is ``v2.<key id>.<expiry>.<trace id>.<subject digest>.<signature>``: the signature is
HMAC-SHA256 over the key id, trace id, subject digest and expiry (Unix seconds). The
subject (the session or user the server established for the response) is never in the
token: only a keyed digest of it (HMAC-SHA256 under a key derived from the signing key,
128 bits, base64url; empty for anonymous callers). A holder learns nothing it could use to
impersonate anyone, and the server can still tell whether a token was issued to a given
subject (:meth:`TokenSigner.issued_to`) and use the digest as a stable, opaque submitter
identity. A digest rather than encrypted claims: the server never needs the subject back,
and HMAC is all the standard library offers (no cipher, no extra dependency).

Several keys may be accepted at once (rotation); the first one signs. Every field has one
canonical spelling (ASCII digits without a leading zero, unpadded base64url of the exact
length): anything else is malformed, so no token has a second valid encoding. Verification
compares signatures in constant time and tells apart a missing, malformed, expired,
unknown-key, forged and other-trace token.

Without a configured secret every signer in the process shares one random key, and a
warning says so once: tokens then do not survive a restart or reach another worker.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from feedback_asgi.core.result import Err, Ok, Result

if TYPE_CHECKING:
    from feedback_asgi.core.config import FeedbackConfig

__all__ = ["TokenClaims", "TokenError", "TokenSigner", "key_id"]

logger = logging.getLogger("feedback_asgi")

_VERSION = "v2"
_MAX_TOKEN_LENGTH = 1024
_SUBJECT_PURPOSE = b"feedback-asgi subject digest\x00"
_ID_PURPOSE = b"feedback-asgi item ids\x00"
_SUBJECT_CACHE_SIZE = 4096
# Canonical spellings only (re.ASCII: str patterns' \d would take any Unicode digit).
_KEY_ID = re.compile(r"[0-9a-f]{8}", re.ASCII)
_EXPIRY = re.compile(r"[1-9][0-9]{0,11}", re.ASCII)
_TRACE = re.compile(r"[A-Za-z0-9._-]{1,64}", re.ASCII)
_B64_CHARS = re.compile(r"[A-Za-z0-9_-]*", re.ASCII)
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
    subject_digest: str
    """The keyed digest of the session or user id the token was issued to (22 characters of
    base64url); empty for an anonymous caller. Opaque: compare it with
    :meth:`TokenSigner.issued_to`, or use it as the submitter's identity."""
    expires_at: int
    """Unix time, in seconds."""
    key_id: str

    @property
    def anonymous(self) -> bool:
        """Whether the token was issued to nobody in particular."""
        return not self.subject_digest


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


def _canonical_b64(text: str, length: int) -> bool:
    """Whether ``text`` is the one unpadded base64url spelling of ``length`` bytes."""
    if not _B64_CHARS.fullmatch(text):
        return False
    try:
        decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return False
    return len(decoded) == length and _b64(decoded) == text


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


class _Key:
    """One secret's derived keys: token MACs, subject digests and item ids."""

    __slots__ = ("id_key", "mac", "subject_mac", "subjects")

    def __init__(self, secret: bytes) -> None:
        self.mac = _HmacSha256(secret)
        # separate keys per purpose: a subject digest is never a token or id MAC
        self.subject_mac = _HmacSha256(hmac.digest(secret, _SUBJECT_PURPOSE, "sha256"))
        self.id_key = hmac.digest(secret, _ID_PURPOSE, "sha256")
        self.subjects: dict[str, str] = {}
        """Recent subject digests (a session signs one token per response)."""

    def subject_digest(self, subject: str) -> str:
        digest = self.subjects.get(subject)
        if digest is None:
            digest = _b64(self.subject_mac.digest(subject.encode("utf-8", "surrogatepass"))[:16])
            if len(self.subjects) >= _SUBJECT_CACHE_SIZE:
                self.subjects.clear()
            self.subjects[subject] = digest
        return digest


class TokenSigner:
    """Signs and verifies feedback tokens.

    ``keys``: the signing key first, then retired keys still accepted. ``None`` or empty
    means the shared random per-process key.
    """

    __slots__ = ("_keys", "_signing", "_signing_id", "clock", "random_key", "ttl_seconds")

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
        self._keys = {key_id(key): _Key(key) for key in reversed(key_list)}
        self._signing_id = key_id(key_list[0])
        self._signing = self._keys[self._signing_id]
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

    @property
    def signing_key_id(self) -> str:
        """The id of the key new tokens are signed with."""
        return self._signing_id

    def sign(self, trace_id: str, subject: str = "", *, ttl_seconds: int | None = None) -> str:
        """A token for ``trace_id`` issued to ``subject`` (session or user id, or ``""``).

        ``trace_id`` must be 1-64 characters of ``A-Z a-z 0-9 . _ -`` (what the endpoint
        accepts); ``ValueError`` otherwise.
        """
        if _TRACE.fullmatch(trace_id) is None:
            raise ValueError("a trace id is 1-64 characters of A-Z, a-z, 0-9, '.', '_', '-'")
        expires = int(self.clock()) + (self.ttl_seconds if ttl_seconds is None else ttl_seconds)
        key = self._signing
        digest = key.subject_digest(subject) if subject else ""
        kid = self._signing_id
        signature = self._signature(key.mac, kid, trace_id, digest, expires)
        return f"{_VERSION}.{kid}.{expires}.{trace_id}.{digest}.{signature}"

    @staticmethod
    def _signature(key: _HmacSha256, kid: str, trace_id: str, digest: str, expires: int) -> str:
        message = f"{_VERSION}\x00{kid}\x00{trace_id}\x00{digest}\x00{expires}".encode()
        return _b64(key.digest(message))

    def subject_digest(self, subject: str, key_id: str | None = None) -> str:
        """The digest a token signed with ``key_id`` (default: the signing key) carries for
        ``subject``; ``""`` for no subject. ``KeyError`` for a key this signer lacks."""
        if not subject:
            return ""
        return self._keys[key_id or self._signing_id].subject_digest(subject)

    def issued_to(self, claims: TokenClaims, subject: str | None) -> bool:
        """Whether the token of ``claims`` was issued to ``subject`` (constant time)."""
        if not subject or claims.anonymous:
            return False
        key = self._keys.get(claims.key_id)
        if key is None:
            return False
        return hmac.compare_digest(key.subject_digest(subject), claims.subject_digest)

    def id_key(self, key_id: str | None = None) -> bytes:
        """A key for deriving ids nobody without the secret can compute (per token key, so
        ids derived for one token's votes stay the same while that token is accepted)."""
        return self._keys.get(key_id or "", self._signing).id_key

    def verify(
        self, token: str | None, trace_id: str | None = None
    ) -> Result[TokenClaims, TokenError]:
        """Check ``token``; with ``trace_id``, also that it was issued for that trace."""
        if not token:
            return Err(TokenError.MISSING)
        if not isinstance(token, str) or len(token) > _MAX_TOKEN_LENGTH or not token.isascii():
            return Err(TokenError.MALFORMED)
        parts = token.split(".")
        if len(parts) < 6 or parts[0] != _VERSION:
            return Err(TokenError.MALFORMED)
        kid, expiry_text, digest, signature = parts[1], parts[2], parts[-2], parts[-1]
        token_trace = ".".join(parts[3:-2])
        if (
            _KEY_ID.fullmatch(kid) is None
            or _EXPIRY.fullmatch(expiry_text) is None
            or _TRACE.fullmatch(token_trace) is None
            or (digest and not _canonical_b64(digest, 16))
            or not _canonical_b64(signature, 32)
        ):
            return Err(TokenError.MALFORMED)
        key = self._keys.get(kid)
        if key is None:
            return Err(TokenError.UNKNOWN_KEY)
        expires = int(expiry_text)
        expected = self._signature(key.mac, kid, token_trace, digest, expires)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            return Err(TokenError.INVALID_SIGNATURE)
        if expires < self.clock():
            return Err(TokenError.EXPIRED)
        if trace_id is not None and not hmac.compare_digest(
            token_trace.encode(), trace_id.encode("utf-8", "replace")
        ):
            return Err(TokenError.WRONG_TRACE)
        return Ok(TokenClaims(trace_id=token_trace, subject_digest=digest, expires_at=expires,
                              key_id=kid))
