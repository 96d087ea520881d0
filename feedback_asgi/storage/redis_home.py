"""Where a kit's Redis client lives, and the event loop that must run its calls.

A Redis client belongs to the loop it first ran on. Under an ASGI server that is the one
loop. Under Django the exchange store runs on a background loop (``exchanges.background``,
wrapping the Redis store in ``exchanges.inner``) because WSGI runs each request on a
throwaway loop: every other Redis call of the kit then goes through that loop too, on the
same client. Imports nothing from Redis: the stores that use the client do.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

__all__ = ["Runner", "redis_home"]

Runner = Callable[[Coroutine[Any, Any, Any]], Awaitable[Any]]
"""Awaits a coroutine on the loop that owns the Redis client."""


def redis_home(exchanges: object) -> tuple[object | None, Runner | None]:
    """The Redis client of a kit's exchange store (``None``: none, make one) and the runner
    of the loop it is bound to (``None``: the caller's own loop)."""
    runner = getattr(getattr(exchanges, "background", None), "run", None)
    store = getattr(exchanges, "inner", exchanges) if runner is not None else exchanges
    return getattr(store, "redis", None), runner
