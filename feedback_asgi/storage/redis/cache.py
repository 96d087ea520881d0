"""``CachedFeedbackStore``: a write-through Redis cache of result lists over any store.

How a read after a write always sees the write, even under concurrency:

* Every cached scope (one session, one trace, one kind) has a *version* key holding a
  token that no other version ever had (taken from one ``clock`` counter). A save commits
  to the backing store first, then gives every scope it affects a fresh token.
* A cached list is stored with the ``epoch:version`` stamp that was current when the
  reader *started* (before it read the backing store), and a read serves it only while
  the stamp is still current. Filling is a Lua script that writes only if the stamp is
  unchanged, so a reader that read old rows while a save committed can never publish them
  (the classic miss / read old / save + invalidate / fill stale race).
* A write that could not reach Redis could not invalidate. So after any Redis failure, and
  on a store's first contact, the store bumps the namespace ``epoch`` before using Redis
  again: every list cached before is then dead. Staleness is still possible in *another*
  process while only this one is cut off from Redis; it is bounded by ``ttl``.

Keys (all under ``prefix``): ``cache:epoch``, ``cache:clock``, ``cache:v:<scope>:<id>``,
``cache:e:<scope>:<variant>:<id>``. They must not be evicted by an ``allkeys-*`` policy
(the epoch and clock have no TTL; under ``volatile-*`` policies they are never evicted).
Not for Redis Cluster (the scripts touch keys in several slots).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis

from feedback_asgi.core.exceptions import (
    FeedbackError,
    FeedbackValidationError,
    StorageUnavailableError,
)
from feedback_asgi.core.records import FeedbackItem, FeedbackKind, FeedbackSummary, normalize_kind
from feedback_asgi.core.result import Err, Result
from feedback_asgi.storage.base import FeedbackStoreProtocol, Page
from feedback_asgi.storage.redis.client import (
    GuardedByRedis,
    RedisBypass,
    RedisGuard,
    key_part,
    text,
)
from feedback_asgi.storage.stats import GroupStats, StatsQuery, compute_stats

__all__ = ["CachedFeedbackStore"]

logger = logging.getLogger("feedback_asgi.storage.redis")

# KEYS: epoch, version, entry. ARGV: the stamp of the copy this process holds ('' if none).
# Returns {epoch, version} on a miss; on a hit (the entry's stamp is the current
# epoch:version) {epoch, version, payload}, or {epoch, version, 1} if ARGV[1] is that stamp.
_READ = """
local epoch = redis.call('GET', KEYS[1]) or '0'
local version = redis.call('GET', KEYS[2]) or ''
local entry = redis.call('GET', KEYS[3])
if entry and version ~= '' then
  local stamp = epoch .. ':' .. version
  local sep = string.find(entry, '\\n', 1, true)
  if sep and string.sub(entry, 1, sep - 1) == stamp then
    if ARGV[1] == stamp then return {epoch, version, 1} end
    return {epoch, version, string.sub(entry, sep + 1)}
  end
end
return {epoch, version}
"""

# KEYS: epoch, version, entry, clock. ARGV: epoch and version the reader saw before it read
# the backing store, payload, entry ttl ms, version ttl ms. Writes nothing (returns 0) if
# either moved; else returns the entry's stamp.
_FILL = """
local epoch = redis.call('GET', KEYS[1]) or '0'
if epoch ~= ARGV[1] then return 0 end
local version = redis.call('GET', KEYS[2]) or ''
if version ~= ARGV[2] then return 0 end
if version == '' then
  version = tostring(redis.call('INCR', KEYS[4]))
  redis.call('SET', KEYS[2], version, 'PX', ARGV[5])
else
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
local stamp = epoch .. ':' .. version
redis.call('SET', KEYS[3], stamp .. '\\n' .. ARGV[3], 'PX', ARGV[4])
return stamp
"""

# KEYS: clock, then the version keys to bump. ARGV: version ttl ms.
_BUMP = """
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], tostring(redis.call('INCR', KEYS[1])), 'PX', ARGV[1])
end
return #KEYS - 1
"""

_DECODED_MAX_BYTES = 256 * 1024

Scope = tuple[str, str]  # (scope name, id): ("session", "s-1"), ("trace", ...), ("type", ...)


class CachedFeedbackStore(GuardedByRedis):
    """Write-through Redis cache over any :class:`FeedbackStoreProtocol` store.

    ``find_by_session``, ``find_by_trace`` and ``find_by_type`` lists are cached for ``ttl``
    seconds; every save invalidates the lists it affects before it returns, so a read
    after a write sees the write. ``get``, ``history``, ``query``, ``aggregate`` and
    ``iter_items`` go straight to ``store``. If Redis fails, everything goes straight to
    ``store`` (logged once per outage, counted in ``redis_errors``), and Redis is tried
    again ``retry_interval`` seconds later.

    Tunable after construction: ``timeout`` (seconds a Redis call may take, default 0.5)
    and ``retry_interval`` (pause after a failure, default 1.0). Build ``redis`` with
    :func:`~feedback_asgi.storage.redis.make_redis_client` for short socket timeouts.
    """

    def __init__(
        self,
        store: FeedbackStoreProtocol,
        redis: aioredis.Redis,
        *,
        prefix: str = "feedback_asgi:",
        ttl: float = 30.0,
    ) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self.store = store
        self.redis = redis
        self.prefix = prefix
        self.ttl = ttl
        self.hits = 0
        """Lists served from Redis."""
        self.misses = 0
        """Lists read from the backing store while Redis was usable."""
        self.fills_refused = 0
        """Fills dropped because a save (or an outage) made what was read outdated."""
        self.namespace_resets = 0
        """Times the whole cache namespace was invalidated (first contact, after failures)."""
        self.invalidation_calls = 0
        """Redis calls that bumped versions after saves (concurrent saves share one)."""
        self._guard = RedisGuard("CachedFeedbackStore", logger, timeout=0.5, retry_interval=1.0)
        # The error generation last covered by an epoch bump; -1: never contacted yet.
        self._reset_generation = -1
        self._pending_scopes: set[Scope] = set()
        self._pending_waiter: asyncio.Future[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        # Lists decoded earlier, by entry key, with their stamp: a read still asks Redis
        # whether the entry is current, but gets a one-word answer instead of the payload.
        self.local_entries = 1024
        """Decoded lists kept in this process (each still checked with Redis); 0: none."""
        self._decoded: OrderedDict[str, tuple[str, tuple[FeedbackItem, ...]]] = OrderedDict()
        self._epoch_key = f"{prefix}cache:epoch"
        self._clock_key = f"{prefix}cache:clock"
        self._read = redis.register_script(_READ)
        self._fill = redis.register_script(_FILL)
        self._bump = redis.register_script(_BUMP)

    # counters and tuning

    @property
    def redis_available(self) -> bool:
        """False from a Redis failure until the next successful Redis call."""
        return self._guard.healthy

    # Redis plumbing

    async def _redis_call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        """Run one script, bumping the epoch first if Redis failed since the last bump."""
        generation = self._guard.error_generation
        if self._reset_generation != generation:
            await self._guard.run(lambda: self.redis.incr(self._epoch_key))
            self._reset_generation = max(self._reset_generation, generation)
            self.namespace_resets += 1
        return await self._guard.run(lambda: script(keys=keys, args=args))

    def _version_key(self, scope: Scope) -> str:
        return f"{self.prefix}cache:v:{scope[0]}:{key_part(scope[1])}"

    def _entry_key(self, scope: Scope, variant: str) -> str:
        return f"{self.prefix}cache:e:{scope[0]}:{variant}:{key_part(scope[1])}"

    async def _cached_list(
        self, scope: Scope, variant: str, load: Callable[[], Awaitable[list[FeedbackItem]]]
    ) -> list[FeedbackItem]:
        entry_key = self._entry_key(scope, variant)
        keys = [self._epoch_key, self._version_key(scope), entry_key]
        held = self._decoded.get(entry_key)
        try:
            reply = await self._redis_call(self._read, keys, [held[0] if held else ""])
        except RedisBypass:
            return await load()
        epoch, version = text(reply[0]), text(reply[1])
        if len(reply) == 3:
            if isinstance(reply[2], int):
                # Redis confirmed the copy decoded earlier is still the current entry.
                if held is not None and held[0] == f"{epoch}:{version}":
                    self.hits += 1
                    return list(held[1])
            else:
                payload = text(reply[2])
                try:
                    items = [FeedbackItem.from_dict(d) for d in json.loads(payload)]
                except (ValueError, TypeError, AttributeError):
                    logger.debug("unreadable cache entry %s; reading through", entry_key)
                else:
                    self.hits += 1
                    self._remember(entry_key, f"{epoch}:{version}", items, len(payload))
                    return items
        self.misses += 1
        items = await load()
        try:
            payload = json.dumps([item.to_dict() for item in items], separators=(",", ":"))
        except (TypeError, ValueError):
            return items  # values JSON cannot hold exactly: not cached
        ttl_ms = max(1, int(self.ttl * 1000))
        args = [epoch, version, payload, ttl_ms, ttl_ms * 2]
        try:
            filled = await self._redis_call(self._fill, [*keys, self._clock_key], args)
        except RedisBypass:
            return items
        if filled == 0:
            self.fills_refused += 1
        else:
            self._remember(entry_key, text(filled), items, len(payload))
        return items

    def _remember(self, entry_key: str, stamp: str, items: list[FeedbackItem], size: int) -> None:
        """Keep the decoded list, served again only while Redis says ``stamp`` is current."""
        self._decoded.pop(entry_key, None)
        if size > _DECODED_MAX_BYTES:
            return
        self._decoded[entry_key] = (stamp, tuple(items))
        while len(self._decoded) > self.local_entries:
            self._decoded.popitem(last=False)

    async def _invalidate(self, scopes: set[Scope]) -> None:
        """Bump the versions of ``scopes``; returns once a bump sent after this call is done.

        Concurrent saves share bumps: while one is in flight, the scopes of later saves
        gather into the next one (a burst of 1,000 saves costs a few Redis calls, not 1,000).
        """
        if not scopes:
            return
        self._pending_scopes |= scopes
        if self._pending_waiter is None:
            self._pending_waiter = asyncio.get_running_loop().create_future()
        waiter = self._pending_waiter
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_invalidations())
        await asyncio.shield(waiter)

    async def _flush_invalidations(self) -> None:
        while self._pending_scopes:
            batch, self._pending_scopes = self._pending_scopes, set()
            waiter, self._pending_waiter = self._pending_waiter, None
            try:
                keys = [self._clock_key, *(self._version_key(scope) for scope in sorted(batch))]
                ttl_ms = max(1, int(self.ttl * 2000))
                # A failure is remembered by the guard: the epoch is bumped before Redis is
                # used again, so no list cached before these writes can be served later.
                self.invalidation_calls += 1
                with contextlib.suppress(RedisBypass):
                    await self._redis_call(self._bump, keys, [ttl_ms])
            except Exception:
                logger.exception("cache invalidation failed; dropping the whole namespace")
                self._reset_generation = -1
            finally:
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)

    @staticmethod
    def _scopes_of(item: FeedbackItem) -> set[Scope]:
        scopes: set[Scope] = {("type", str(item.feedback_type))}
        for name in ("session_id", "trace_id"):
            value = item.context.get(name)
            if value is not None:
                scopes.add((name.removesuffix("_id"), str(value)))
        return scopes

    async def _affected(self, items: Sequence[FeedbackItem]) -> set[Scope]:
        """Scopes whose lists change when ``items`` are saved, superseded rows' included."""
        scopes: set[Scope] = set()
        new_ids = {item.id for item in items}
        for item in items:
            scopes |= self._scopes_of(item)
            if item.supersedes is not None and item.supersedes not in new_ids:
                try:
                    previous = await self.store.get(item.supersedes)
                except Exception:
                    previous = None
                    self._reset_generation = -1  # cannot tell what it affected: drop all
                if previous is not None:
                    scopes |= self._scopes_of(previous)
        return scopes

    # writes

    async def save(self, item: FeedbackItem) -> Result[str, FeedbackError]:
        """Save through to the backing store, then invalidate the lists it affects."""
        result = await self.store.save(item)
        if not (isinstance(result, Err) and isinstance(result.error, FeedbackValidationError)):
            await self._invalidate(await self._affected([item]))
        return result

    async def save_many(self, items: Sequence[FeedbackItem]) -> Result[list[str], FeedbackError]:
        """Save all through to the backing store, then invalidate the lists they affect."""
        result = await self.store.save_many(items)
        if not (isinstance(result, Err) and isinstance(result.error, FeedbackValidationError)):
            await self._invalidate(await self._affected(items))
        return result

    # cached reads

    async def find_by_session(
        self, session_id: str, *, include_history: bool = False
    ) -> list[FeedbackItem]:
        """Items of one session, newest first (cached)."""
        return await self._cached_list(
            ("session", session_id),
            "h" if include_history else "l",
            lambda: self.store.find_by_session(session_id, include_history=include_history),
        )

    async def find_by_trace(
        self, trace_id: str, *, include_history: bool = False
    ) -> list[FeedbackItem]:
        """Items on one trace, newest first (cached)."""
        return await self._cached_list(
            ("trace", trace_id),
            "h" if include_history else "l",
            lambda: self.store.find_by_trace(trace_id, include_history=include_history),
        )

    async def find_by_type(
        self, feedback_type: FeedbackKind, *, limit: int = 100, include_history: bool = False
    ) -> list[FeedbackItem]:
        """Items of one kind, newest first, at most ``limit`` (cached per limit)."""
        kind = normalize_kind(feedback_type)
        return await self._cached_list(
            ("type", str(kind)),
            f"{'h' if include_history else 'l'}{limit}",
            lambda: self.store.find_by_type(kind, limit=limit, include_history=include_history),
        )

    # uncached reads

    async def get(self, feedback_id: str) -> FeedbackItem | None:
        """The row with this id (from the backing store)."""
        return await self.store.get(feedback_id)

    async def history(self, feedback_id: str) -> list[FeedbackItem]:
        """The chain containing ``feedback_id`` (from the backing store)."""
        return await self.store.history(feedback_id)

    async def query(
        self,
        *,
        type: FeedbackKind | None = None,
        model: str | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        trace_id: str | None = None,
        request_id: str | None = None,
        otel_trace_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
        include_history: bool = False,
    ) -> Page:
        """Filtered, paginated items (from the backing store)."""
        return await self.store.query(
            type=type,
            model=model,
            session_id=session_id,
            user_id=user_id,
            trace_id=trace_id,
            request_id=request_id,
            otel_trace_id=otel_trace_id,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
            include_history=include_history,
        )

    async def aggregate(
        self,
        *,
        window_hours: float = 24,
        model: str | None = None,
        provider: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> FeedbackSummary:
        """Figures over live items (from the backing store, uncached)."""
        return await self.store.aggregate(
            window_hours=window_hours, model=model, provider=provider, since=since, until=until
        )

    async def stats(self, query: StatsQuery) -> list[GroupStats]:
        """Stats from the backing store, uncached (as :meth:`aggregate`)."""
        return await compute_stats(self.store, query)

    def iter_items(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        batch_size: int = 1000,
        include_history: bool = False,
    ) -> AsyncIterator[FeedbackItem]:
        """Every matching item, oldest first (from the backing store)."""
        return self.store.iter_items(
            since=since, until=until, batch_size=batch_size, include_history=include_history
        )

    # health and lifecycle

    async def ping(self) -> float:
        """Round trip to the backing store in ms (the cache being down is not an outage)."""
        return await self.store.ping()

    async def ping_redis(self) -> float:
        """Round trip to Redis in ms; raises ``StorageUnavailableError`` if it is down."""
        started = time.perf_counter()
        try:
            await self._guard.run(self.redis.ping, force=True)
        except RedisBypass as exc:
            raise StorageUnavailableError(f"Redis cache unavailable: {exc.__cause__!r}") from exc
        return (time.perf_counter() - started) * 1000

    async def close(self) -> None:
        """Close the backing store and the Redis client."""
        try:
            await self.store.close()
        finally:
            await self.redis.aclose()
