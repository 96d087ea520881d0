"""Who may use the read/admin routes, and who may edit or retract an item.

Read/admin rights come from ``kit.authorizer(scope)`` (a callable the app passes to its
``FeedbackKit``, sync or async), from ``Authorization: Bearer <FEEDBACK_ASGI_ADMIN_TOKEN>``
(compared in constant time), or from an adapter that authenticated the caller itself
(Django staff: :data:`READER_SCOPE_KEY` in the scope it builds), or from the dashboard's
sign-in cookie (:mod:`feedback_asgi.dashboard.session`; not for cross-origin writes). With
neither configured nobody has them: those routes answer 401. The submitter of an item may
edit or retract it (and read it) with the feedback token it was submitted with: same trace,
same subject digest (an anonymous token works on its own trace). The token is checked before
any storage lookup, and an item it may not touch is answered 404, as an unknown one.
"""

from __future__ import annotations

import hmac
import inspect
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from feedback_asgi.core.records import FeedbackItem
from feedback_asgi.core.result import Err, Ok
from feedback_asgi.core.tokens import TokenClaims
from feedback_asgi.dashboard.session import cookie_grants
from feedback_asgi.feedback.votes import SUBMITTER_METADATA_KEY
from feedback_asgi.kit import Authorizer
from feedback_asgi.web.wire import HttpError, header

if TYPE_CHECKING:
    from feedback_asgi.kit import FeedbackKit

__all__ = [
    "ANONYMOUS_SUBMITTER",
    "AUTHENTICATED_SCOPE_KEY",
    "READER_SCOPE_KEY",
    "SERVER_SUBMITTER",
    "Authorizer",
    "ItemAccess",
    "bearer_is_admin",
    "is_admin",
    "item_access",
    "require_admin",
    "submitter_of",
    "verified_claims",
]

logger = logging.getLogger("feedback_asgi")


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
            or await cookie_grants(kit, scope):
        return True
    authorizer: Authorizer | None = kit.authorizer
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


def submitter_of(claims: TokenClaims) -> str:
    """The ``metadata["submitter"]`` value for a token: its keyed subject digest, or
    :data:`ANONYMOUS_SUBMITTER`."""
    return claims.subject_digest or ANONYMOUS_SUBMITTER


@dataclass(frozen=True, slots=True)
class ItemAccess:
    """Who is touching an item: read/admin rights, or the holder of a verified token."""

    role: str
    """``"admin"`` or ``"owner"`` (recorded as ``edited_by`` on an edit or retraction)."""
    claims: TokenClaims | None = None
    """The token's claims, for an ``"owner"``."""

    def may_touch(self, item: FeedbackItem) -> bool:
        """Whether this caller may read, edit or retract ``item``: an admin may; a token
        holder only an item of the token's trace sent with that token's subject."""
        claims = self.claims
        if claims is None:
            return self.role == "admin"
        owner = item.metadata.get(SUBMITTER_METADATA_KEY)
        trace_id = item.trace_id
        return (
            isinstance(owner, str) and trace_id is not None
            and hmac.compare_digest(trace_id.encode("utf-8", "surrogatepass"),
                                    claims.trace_id.encode())
            and hmac.compare_digest(owner.encode("utf-8", "surrogatepass"),
                                    submitter_of(claims).encode())
        )


async def item_access(kit: FeedbackKit, scope: Mapping[str, Any], token: str | None) -> ItemAccess:
    """Who may touch items, decided before any storage lookup: read/admin rights, else a
    valid feedback token (its item is checked by :meth:`ItemAccess.may_touch`, and one it
    may not touch is answered like an item that does not exist); else 401/403."""
    if await is_admin(kit, scope):
        return ItemAccess("admin")
    if token is None:
        raise _denied(scope)
    return ItemAccess("owner", verified_claims(kit, token))


def verified_claims(kit: FeedbackKit, token: str | None, trace_id: str | None = None) -> TokenClaims:
    """The claims of a valid ``token`` (issued for ``trace_id`` when given), else the token
    error as an :class:`HttpError` (401, or 403 for another trace)."""
    match kit.signer.verify(token, trace_id):
        case Ok(claims):
            return claims
        case Err(error):
            raise HttpError(error.http_status, error.value, error.message)
    raise AssertionError("unreachable")  # pragma: no cover
