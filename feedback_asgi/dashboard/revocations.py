"""Signed-out dashboard cookies: refused from sign-out until they would have expired anyway.

Signing out records the cookie's nonce. Without ``redis_url`` the record lives in this
process only: every request this process serves refuses the cookie, another worker process
would still accept it (run one process, or configure Redis). With ``redis_url`` it is also
kept in Redis (:class:`~feedback_asgi.storage.redis.revocations.RedisRevocations`, under
``config.redis_key_prefix``, with a TTL until the cookie's expiry plus a margin for clock
skew between hosts; :mod:`feedback_asgi.dashboard.shared`), so every worker refuses it.

When Redis cannot answer, a check fails closed: a cookie this process did not see signed
out is refused until Redis answers again. A signed-out cookie may have been stolen; letting
it work during an outage would undo the sign-out, while refusing costs the dashboard's
cookie users a sign-in page for the outage (the admin bearer, the authorizer and Django
staff rights keep working). A sign-out that Redis does not take is reported as failed,
so the browser keeps its cookie and can try again: nothing is half done.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from feedback_asgi.dashboard.shared import SharedRevocations, shared_revocations

if TYPE_CHECKING:
    from feedback_asgi.kit import FeedbackKit

__all__ = ["CLOCK_SKEW_SECONDS", "Revocations", "revocations_for"]

CLOCK_SKEW_SECONDS = 300
"""Kept in Redis this much past the cookie's expiry: a worker whose clock is behind still
refuses it until the cookie has expired by its own clock too."""

_registry: weakref.WeakKeyDictionary[Any, Revocations] = weakref.WeakKeyDictionary()


class Revocations:
    """The signed-out cookie nonces of one kit: in this process, and in ``shared`` if given."""

    __slots__ = ("_local", "clock", "shared")

    def __init__(self, shared: SharedRevocations | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.shared = shared
        self.clock = clock
        # nonce -> expiry. Only a valid cookie can be signed out, and sign-ins are rate
        # limited, so this grows no faster than admins sign in; expired ones are dropped.
        self._local: dict[str, int] = {}

    async def revoke(self, nonce: str, expires: int) -> bool:
        """Refuse the cookie with ``nonce`` until ``expires``; ``False`` if it could not be shared."""
        now = self.clock()
        if self.shared is not None:
            ttl = int(expires - now) + CLOCK_SKEW_SECONDS
            if not await self.shared.add(nonce, ttl):
                return False
        self._local = {key: end for key, end in self._local.items() if end > now}
        self._local[nonce] = expires
        return True

    async def is_revoked(self, nonce: str) -> bool:
        """Whether the cookie with ``nonce`` was signed out (``True`` when Redis cannot say)."""
        if nonce in self._local:
            return True
        if self.shared is None:
            return False
        found = await self.shared.contains(nonce)
        return True if found is None else found


def revocations_for(kit: FeedbackKit) -> Revocations:
    """The kit's revocations (built once per kit)."""
    revocations = _registry.get(kit)
    if revocations is None:
        revocations = _registry[kit] = Revocations(shared_revocations(kit))
    return revocations
