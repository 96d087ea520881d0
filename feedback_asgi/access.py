"""Who may use the read/admin routes, and who may edit or retract an item.

Read/admin rights come from ``kit.authorizer(scope)`` (a callable the app passes to its
``FeedbackKit``, sync or async), from ``Authorization: Bearer <FEEDBACK_ASGI_ADMIN_TOKEN>``
(compared in constant time), or from an adapter that authenticated the caller itself
(Django staff: :data:`READER_SCOPE_KEY` in the scope it builds), or from the dashboard's
sign-in cookie (:mod:`feedback_asgi.dashboard.session`; not for cross-origin writes). With neither configured nobody has them: those routes answer
401. The submitter of an item may edit or retract it (and read it) with the feedback token
it was submitted with: same trace, same subject (an anonymous token works on its own trace).
"""

from __future__ import annotations

import hmac
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

from feedback_asgi.dashboard.session import cookie_grants
from feedback_asgi.http import HttpError, header
from feedback_asgi.idempotency import SUBMITTER_METADATA_KEY, fingerprint
from feedback_asgi.result import Err, Ok
from feedback_asgi.types import FeedbackItem

if TYPE_CHECKING:
    from feedback_asgi.kit import FeedbackKit

__all__ = [
    "ANONYMOUS_SUBMITTER",
    "AUTHENTICATED_SCOPE_KEY",
    "READER_SCOPE_KEY",
    "SERVER_SUBMITTER",
    "Authorizer",
    "bearer_is_admin",
    "is_admin",
    "require_admin",
    "require_owner_or_admin",
    "submitter_of",
]

logger = logging.getLogger("feedback_asgi")

Authorizer: TypeAlias = Callable[[Mapping[str, Any]], bool | Awaitable[bool]]
"""``authorizer(scope)``: whether the request may use the read/admin routes."""

ANONYMOUS_SUBMITTER = "anonymous"
"""``metadata["submitter"]`` of items sent with a token issued to nobody in particular."""
SERVER_SUBMITTER = "server"
"""``metadata["submitter"]`` of items an authorized server caller posted without a token."""


def bearer_is_admin(kit: FeedbackKit, scope: Mapping[str, Any]) -> bool:
    """Whether the request carries ``Authorization: Bearer <config.admin_token>``."""
    admin = kit.config.admin_token
    value = header(scope, b"authorization")
    if admin is None or value is None or value[:7].lower() != "bearer ":
        return False
    return hmac.compare_digest(
        value[7:].strip().encode("latin-1"), admin.get_secret_value().encode()
    )


READER_SCOPE_KEY = "feedback_asgi.reader"
"""Scope key an adapter sets to ``True`` for a caller it authenticated as a reader (Django staff)."""
AUTHENTICATED_SCOPE_KEY = "feedback_asgi.authenticated"
"""Scope key an adapter sets to ``True`` for a logged-in caller without rights (answered 403)."""


async def is_admin(kit: FeedbackKit, scope: Mapping[str, Any]) -> bool:
    """Whether the request has read/admin rights (admin bearer, adapter, or authorizer)."""
    if scope.get(READER_SCOPE_KEY) is True or bearer_is_admin(kit, scope) \
            or cookie_grants(kit, scope):
        return True
    authorizer: Authorizer | None = getattr(kit, "authorizer", None)
    if authorizer is None:
        return False
    try:
        granted = authorizer(scope)
        if inspect.isawaitable(granted):
            granted = await granted
    except Exception:
        logger.exception("feedback-asgi: the authorizer failed; access denied")
        return False
    return granted is True


def _denied(scope: Mapping[str, Any]) -> HttpError:
    if header(scope, b"x-feedback-token") is not None or scope.get(AUTHENTICATED_SCOPE_KEY):
        return HttpError(403, "forbidden", "this route needs read/admin rights")
    return HttpError(401, "unauthorized", "read/admin rights are required (admin bearer token)",
                     headers=((b"www-authenticate", b"Bearer"),))


async def require_admin(kit: FeedbackKit, scope: Mapping[str, Any]) -> None:
    """Raise 401 (no rights shown) or 403 (a submitter's token) unless the caller is admin."""
    if not await is_admin(kit, scope):
        raise _denied(scope)


def submitter_of(subject: str) -> str:
    """The ``metadata["submitter"]`` value for a token subject."""
    return fingerprint(subject) if subject else ANONYMOUS_SUBMITTER


async def require_owner_or_admin(
    kit: FeedbackKit, scope: Mapping[str, Any], item: FeedbackItem, token: str | None
) -> str:
    """``"admin"`` or ``"owner"`` (the item's submitter, by its token); else 401/403."""
    if await is_admin(kit, scope):
        return "admin"
    if token is None:
        raise _denied(scope)
    trace_id = item.trace_id
    if trace_id is None:
        raise HttpError(403, "forbidden", "this item can only be changed with read/admin rights")
    match kit.signer.verify(token, trace_id):
        case Ok(claims):
            owner = item.metadata.get(SUBMITTER_METADATA_KEY)
            if isinstance(owner, str) and hmac.compare_digest(
                owner.encode(), submitter_of(claims.subject).encode()
            ):
                return "owner"
            raise HttpError(403, "forbidden", "this token did not submit that feedback")
        case Err(error):
            raise HttpError(error.http_status, error.value, error.message)
    raise AssertionError("unreachable")  # pragma: no cover
