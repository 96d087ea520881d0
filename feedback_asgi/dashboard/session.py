"""The dashboard's sign-in cookie: a signed, expiring grant of read/admin rights.

Whoever signs in with ``config.admin_token`` on ``{path}/dashboard/login`` gets the cookie
:data:`COOKIE_NAME` = ``v1.<expiry>.<nonce>.<signature>``, HttpOnly, ``SameSite=Strict``,
``Path={path}``, ``Secure`` over https. The signature is HMAC-SHA256 over the expiry, the
nonce and a digest of the admin token, under a key derived from ``secret_key`` (retired
``previous_secret_keys`` still verify). So the cookie expires on its own, stops working
when the admin token or the secret changes, and cannot be made from a feedback token.

:func:`cookie_grants` is what the access check asks: the cookie is valid and not signed
out, and for a method other than GET/HEAD the request also comes from the page's own origin
(a CSRF guard on top of ``SameSite=Strict``). Signing out (:func:`revoke_cookie`) makes the
server refuse the cookie until it expires: in every worker with ``redis_url``, in this
process without it (:mod:`feedback_asgi.dashboard.revocations`, which also says why a check
fails closed while Redis is down).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from feedback_asgi.dashboard.revocations import revocations_for
from feedback_asgi.web.wire import header

if TYPE_CHECKING:
    from feedback_asgi.core.config import FeedbackConfig
    from feedback_asgi.kit import FeedbackKit

__all__ = [
    "COOKIE_NAME",
    "SESSION_TTL_SECONDS",
    "clear_cookie",
    "cookie_grants",
    "cookie_valid",
    "issue_cookie",
    "read_cookie",
    "revoke_cookie",
    "same_origin",
    "set_cookie",
    "verify_cookie",
]

COOKIE_NAME = "feedback_asgi_admin"
SESSION_TTL_SECONDS = 8 * 3600
"""How long a sign-in lasts (a working day)."""
_VERSION = "v1"
_PURPOSE = b"feedback-asgi dashboard session\x00"
_MAX_COOKIE_LENGTH = 200
_SAFE_METHODS = frozenset({"GET", "HEAD"})
_process_key = secrets.token_bytes(32)
"""Signs cookies when no ``secret_key`` is set (they then die with the process)."""


def _keys(config: FeedbackConfig) -> list[bytes]:
    # a key of its own per secret: a cookie MAC is never a valid feedback-token MAC
    secrets_ = config.secret_values() or [_process_key]
    return [hmac.digest(secret, _PURPOSE, "sha256") for secret in secrets_]


def _message(config: FeedbackConfig, expires: int, nonce: str) -> bytes | None:
    admin = config.admin_token
    if admin is None:
        return None
    token_digest = hashlib.sha256(admin.get_secret_value().encode()).hexdigest()
    return f"{_VERSION}\x00{expires}\x00{nonce}\x00{token_digest}".encode()


def issue_cookie(config: FeedbackConfig, *, now: float | None = None,
                 ttl_seconds: int = SESSION_TTL_SECONDS) -> str:
    """A fresh cookie value granting read/admin rights for ``ttl_seconds``.

    Raises ``ValueError`` when no ``admin_token`` is configured (nothing to sign in with).
    """
    expires = int(time.time() if now is None else now) + ttl_seconds
    nonce = secrets.token_urlsafe(12)
    message = _message(config, expires, nonce)
    if message is None:
        raise ValueError("admin_token is not configured")
    signature = hmac.digest(_keys(config)[0], message, "sha256").hex()
    return f"{_VERSION}.{expires}.{nonce}.{signature}"


def _verified(config: FeedbackConfig, value: str | None,
              now: float | None = None) -> tuple[int, str] | None:
    """``(expiry, nonce)`` of a cookie :func:`verify_cookie` accepts, else ``None``."""
    if not value or len(value) > _MAX_COOKIE_LENGTH:
        return None
    parts = value.split(".")
    if len(parts) != 4 or parts[0] != _VERSION or not parts[1].isdigit() or len(parts[1]) > 12:
        return None
    expires, nonce, signature = int(parts[1]), parts[2], parts[3]
    message = _message(config, expires, nonce)
    if message is None:
        return None
    given = signature.encode("ascii", "replace")
    valid = False
    for key in _keys(config):  # every key, so the time does not tell which one matched
        valid |= hmac.compare_digest(hmac.digest(key, message, "sha256").hex().encode(), given)
    if not valid or expires <= (time.time() if now is None else now):
        return None
    return expires, nonce


def verify_cookie(config: FeedbackConfig, value: str | None, *, now: float | None = None) -> bool:
    """Whether ``value`` is an unexpired cookie signed for the current admin token.

    The signature and expiry only: :func:`cookie_valid` also refuses signed-out cookies.
    """
    return _verified(config, value, now) is not None


async def cookie_valid(kit: FeedbackKit, value: str | None) -> bool:
    """Whether ``value`` is a cookie :func:`verify_cookie` accepts and nobody signed out."""
    verified = _verified(kit.config, value)
    if verified is None:
        return False
    return not await revocations_for(kit).is_revoked(verified[1])


async def revoke_cookie(kit: FeedbackKit, value: str | None) -> bool:
    """Sign ``value`` out: refused from now until it expires. ``False`` if that could not
    be recorded (Redis down); an invalid or expired cookie needs nothing and is ``True``."""
    verified = _verified(kit.config, value)
    if verified is None:
        return True
    expires, nonce = verified
    return await revocations_for(kit).revoke(nonce, expires)


def read_cookie(scope: Mapping[str, Any], name: str = COOKIE_NAME) -> str | None:
    """The value of cookie ``name`` in the request (the first one, from any Cookie header)."""
    for key, raw in scope.get("headers", ()):
        if key.lower() != b"cookie":
            continue
        for pair in bytes(raw).decode("latin-1").split(";"):
            cookie_name, sep, value = pair.strip().partition("=")
            if sep and cookie_name == name:
                return value.strip().strip('"')
    return None


def same_origin(scope: Mapping[str, Any]) -> bool:
    """Whether a state-changing request comes from a page of this host.

    ``Sec-Fetch-Site`` (when the browser sends it) must be ``same-origin`` or ``none``; an
    ``Origin`` (when sent) must name this ``Host``. Scheme is not compared: behind a TLS
    proxy the app may see http while the browser says https.
    """
    site = header(scope, b"sec-fetch-site")
    if site is not None and site.lower() not in ("same-origin", "none"):
        return False
    origin = header(scope, b"origin")
    if origin is None:
        return True
    host = header(scope, b"host")
    if origin == "null" or host is None:
        return False
    return urlsplit(origin).netloc.lower() == host.strip().lower()


async def cookie_grants(kit: FeedbackKit, scope: Mapping[str, Any]) -> bool:
    """Whether the request's sign-in cookie grants read/admin rights for this request."""
    verified = _verified(kit.config, read_cookie(scope))
    if verified is None:
        return False
    if scope.get("method", "GET") not in _SAFE_METHODS and not same_origin(scope):
        return False
    return not await revocations_for(kit).is_revoked(verified[1])  # last: it may ask Redis


def _is_https(scope: Mapping[str, Any]) -> bool:
    return scope.get("scheme") in ("https", "wss")


def set_cookie(scope: Mapping[str, Any], value: str, path: str,
               ttl_seconds: int = SESSION_TTL_SECONDS) -> tuple[bytes, bytes]:
    """The ``Set-Cookie`` header that stores ``value`` for ``ttl_seconds`` below ``path``."""
    expires = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + ttl_seconds))
    secure = "; Secure" if _is_https(scope) else ""
    text = (f"{COOKIE_NAME}={value}; Path={path}; Max-Age={ttl_seconds}; Expires={expires}; "
            f"HttpOnly; SameSite=Strict{secure}")
    return b"set-cookie", text.encode("latin-1")


def clear_cookie(scope: Mapping[str, Any], path: str) -> tuple[bytes, bytes]:
    """The ``Set-Cookie`` header that deletes the cookie (sign-out)."""
    secure = "; Secure" if _is_https(scope) else ""
    text = (f"{COOKIE_NAME}=; Path={path}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; "
            f"HttpOnly; SameSite=Strict{secure}")
    return b"set-cookie", text.encode("latin-1")
