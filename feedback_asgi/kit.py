"""``FeedbackKit``: the composition root that owns every part and its lifecycle.

``kit.config``, ``kit.store``, ``kit.exchanges``, ``kit.registry``, ``kit.collector``,
``kit.service``, ``kit.signer``, ``kit.hooks`` and ``kit.writer`` (the exchange writer).
Constructing a kit never connects to anything. ``await kit.startup()`` (run by the
middleware on ASGI lifespan startup, or lazily on first use when no lifespan ran) starts
the exchange writer and checks the database in the background: the app's startup waits at
most a moment for it, so a silent database never holds the app up; a failure is logged and
reported by :meth:`FeedbackKit.health` while the kit keeps serving the app and retries
later.
``await kit.shutdown()`` drains the writer and closes connections.

When no kit is passed, the middleware, ``FeedbackContext`` and the adapters share the
process's default kit (:func:`get_default_kit`), built from ``FEEDBACK_ASGI_*`` variables.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

from feedback_asgi.capture.exchange import CaptureSettings
from feedback_asgi.capture.writer import ExchangeWriter
from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.core.error_counter import ErrorCounter
from feedback_asgi.core.tokens import TokenSigner

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from feedback_asgi.core.records import Exchange
    from feedback_asgi.feedback.collector import FeedbackCollector
    from feedback_asgi.feedback.hooks import FeedbackHooks
    from feedback_asgi.feedback.processors import FeedbackProcessorRegistry
    from feedback_asgi.feedback.service import FeedbackService
    from feedback_asgi.storage.base import ExchangeStoreProtocol, FeedbackStoreProtocol

__all__ = [
    "TESTING_SECRET_KEY",
    "Authorizer",
    "FeedbackKit",
    "HealthReport",
    "get_default_kit",
    "kit_for_collector",
    "set_default_kit",
]

Authorizer: TypeAlias = Callable[[Mapping[str, Any]], bool | Awaitable[bool]]
"""``authorizer(scope)``: whether the request may use the read/admin routes."""

logger = logging.getLogger("feedback_asgi")

TESTING_SECRET_KEY = "feedback-asgi-testing-secret-key-not-for-production"
"""The fixed secret of :meth:`FeedbackKit.for_testing` kits."""

RETRY_SECONDS = 5.0
"""How long after a failed startup the next request may try again."""
STARTUP_WAIT_SECONDS = 0.1
"""How long :meth:`FeedbackKit.startup` waits for the database check before it returns
(the check goes on in the background, bounded by ``connect_timeout_seconds``)."""
HEALTH_WAIT_SECONDS = 0.75
"""How long :meth:`FeedbackKit.health` waits for each part's probe (they run at once)."""

_kits_by_collector: weakref.WeakKeyDictionary[Any, FeedbackKit] = weakref.WeakKeyDictionary()
_default_kit: FeedbackKit | None = None
_default_lock = threading.Lock()


def kit_for_collector(collector: object) -> FeedbackKit | None:
    """The kit that owns ``collector`` (so ``FeedbackContext(kit.collector)`` finds its kit)."""
    try:
        return _kits_by_collector.get(collector)
    except TypeError:
        return None


def get_default_kit() -> FeedbackKit:
    """The process's shared kit, built from the environment on first use."""
    global _default_kit
    kit = _default_kit
    if kit is None:
        with _default_lock:
            if _default_kit is None:
                _default_kit = FeedbackKit.from_env()
            kit = _default_kit
    return kit


def set_default_kit(kit: FeedbackKit | None) -> None:
    """Replace the process's default kit (``None``: build a new one from env on next use)."""
    global _default_kit
    with _default_lock:
        _default_kit = kit


class HealthReport(dict[str, Any]):
    """The result of :meth:`FeedbackKit.health`: a JSON-ready dict plus ``healthy``."""

    @property
    def healthy(self) -> bool:
        """Whether the database (and Redis, when configured) answered."""
        return bool(self.get("healthy"))

    def to_dict(self) -> dict[str, Any]:
        """A plain dict copy."""
        return dict(self)


class FeedbackKit:
    """Owns config, stores, registry, collector, service, signer, hooks and the writer.

    Any part may be passed in; the rest is built from ``config`` (default: from the
    environment). Nothing connects until used. ``authorizer(scope) -> bool`` (sync or
    async) grants the read/admin routes, as a ``config.admin_token`` bearer does.
    """

    def __init__(
        self,
        config: FeedbackConfig | None = None,
        *,
        store: FeedbackStoreProtocol | None = None,
        exchanges: ExchangeStoreProtocol | None = None,
        registry: FeedbackProcessorRegistry | None = None,
        hooks: FeedbackHooks | None = None,
        collector: FeedbackCollector | None = None,
        service: FeedbackService | None = None,
        signer: TokenSigner | None = None,
        synchronous_writer: bool = False,
        authorizer: Authorizer | None = None,
    ) -> None:
        from feedback_asgi.feedback.collector import FeedbackCollector
        from feedback_asgi.feedback.hooks import FeedbackHooks
        from feedback_asgi.feedback.processors import FeedbackProcessorRegistry
        from feedback_asgi.feedback.service import FeedbackService

        self.config = config if config is not None else FeedbackConfig()
        config = self.config
        self.errors = ErrorCounter()
        """Counts of the library's own failures, by kind (also in :meth:`health`)."""
        if store is None or exchanges is None:
            from feedback_asgi.storage.factory import build_exchange_store, build_store

            store = store if store is not None else build_store(config)
            exchanges = exchanges if exchanges is not None else build_exchange_store(config)
        self.store: FeedbackStoreProtocol = store
        self.exchanges: ExchangeStoreProtocol = exchanges
        self.registry = (
            registry if registry is not None else FeedbackProcessorRegistry.with_defaults(config)
        )
        self.hooks = hooks if hooks is not None else FeedbackHooks()
        self.collector = (
            collector
            if collector is not None
            else FeedbackCollector(store, registry=self.registry, hooks=self.hooks, config=config)
        )
        self.service = (
            service
            if service is not None
            else FeedbackService(collector=self.collector, config=config)
        )
        self.signer = signer if signer is not None else TokenSigner.from_config(config)
        self.authorizer = authorizer
        """Who may use the read/admin routes besides ``config.admin_token`` bearers: a
        callable given the request's ASGI scope, returning (or awaiting to) a bool."""
        self.writer = ExchangeWriter(
            exchanges,
            maxsize=config.exchange_queue_size,
            ttl=config.exchange_ttl_seconds,
            errors=self.errors,
            synchronous=synchronous_writer,
        )
        self.capture_settings = CaptureSettings.from_config(config)
        """Capture rules and limits for requests."""
        self.context_settings = CaptureSettings.from_config(config, capture_metadata=False)
        """Settings of exchanges recorded by a ``FeedbackContext`` outside any request."""
        self.started = False
        """Whether :meth:`startup` has completed successfully."""
        self.startup_error: str | None = None
        self._last_attempt = 0.0
        self._startup_task: asyncio.Task[None] | None = None
        self._check: asyncio.Task[None] | None = None
        self._probes: dict[str, tuple[float, asyncio.Task[dict[str, Any]]]] = {}
        with contextlib.suppress(TypeError):
            _kits_by_collector[self.collector] = self

    @classmethod
    def from_env(cls) -> FeedbackKit:
        """A kit configured by ``FEEDBACK_ASGI_*`` environment variables."""
        return cls(FeedbackConfig.from_env())

    @classmethod
    def for_testing(cls, config: FeedbackConfig | None = None, **settings: Any) -> FeedbackKit:
        """A kit for tests: in-memory stores, a fixed secret, exchanges written at once.

        ``settings`` are config fields (``FeedbackKit.for_testing(rating_max=10)``); the
        secret is :data:`TESTING_SECRET_KEY` unless one is given. No task, no thread.
        """
        from feedback_asgi.storage.memory import MemoryExchangeStore, MemoryFeedbackStore

        if config is None:
            settings.setdefault("secret_key", TESTING_SECRET_KEY)
            config = FeedbackConfig(**settings)
        elif settings:
            config = config.model_copy(update=settings)
        return cls(
            config,
            store=MemoryFeedbackStore(),
            exchanges=MemoryExchangeStore(
                max_items=config.exchange_max_items, default_ttl=config.exchange_ttl_seconds
            ),
            synchronous_writer=True,
        )

    # lifecycle

    async def startup(self) -> None:
        """Start the exchange writer and check the database; never raises for an outage.

        The check runs in the background (bounded by ``connect_timeout_seconds``); this
        waits for it at most :data:`STARTUP_WAIT_SECONDS`, so an app starting while its
        database accepts connections and never answers is served at once.
        """
        self._last_attempt = time.monotonic()
        await self.writer.start()
        loop = asyncio.get_running_loop()
        check = self._check
        if check is not None and not check.done() and check.get_loop() is loop:
            return  # one check at a time
        check = loop.create_task(self._check_store(), name="feedback-asgi store check")
        self._check = check
        await asyncio.wait({check}, timeout=STARTUP_WAIT_SECONDS)

    async def _check_store(self) -> None:
        try:
            await asyncio.wait_for(self.store.ping(), self.config.connect_timeout_seconds)
        except Exception as exc:
            self.started = False
            self.startup_error = f"{type(exc).__name__}: {exc}"
            logger.warning(
                "feedback-asgi: the feedback store is not reachable (%s); the app keeps "
                "serving, feedback answers 503 until it is; retrying later",
                self.startup_error,
            )
            return
        self.startup_error = None
        self.started = True

    async def ensure_started(self) -> None:
        """Run :meth:`startup` if it has not succeeded yet (at most every few seconds)."""
        if self.started:
            return
        if self.startup_error is not None and time.monotonic() - self._last_attempt < RETRY_SECONDS:
            return
        task = self._startup_task
        loop = asyncio.get_running_loop()
        if task is None or task.done() or task.get_loop() is not loop:
            task = loop.create_task(self.startup(), name="feedback-asgi startup")
            self._startup_task = task
        await asyncio.shield(task)

    def start_soon(self) -> None:
        """Schedule :meth:`ensure_started` without waiting for it (the request path's call)."""
        task = self._startup_task
        if task is not None and not task.done():
            return
        if self.startup_error is not None and time.monotonic() - self._last_attempt < RETRY_SECONDS:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._last_attempt = time.monotonic()
        self._startup_task = loop.create_task(self.startup(), name="feedback-asgi startup")

    async def shutdown(self, max_wait: float = 5.0) -> None:
        """Write the queued exchanges (within ``max_wait`` seconds) and close the stores."""
        for pending in (self._check, *(task for _, task in self._probes.values())):
            if pending is not None and not pending.done():
                pending.cancel()
        task = self._startup_task
        if task is not None and not task.done():
            try:
                if task.get_loop() is asyncio.get_running_loop():
                    await asyncio.wait_for(asyncio.shield(task), max_wait)
            except Exception:  # the startup's outcome is in startup_error
                pass
        await self.writer.stop(max_wait)
        for name, closer in (("store", self.store.close), ("exchange store", self.exchanges.close)):
            try:
                await asyncio.wait_for(closer(), max_wait)
            except Exception as exc:
                logger.warning("feedback-asgi: closing the %s failed: %s", name, exc)
        self.started = False

    # state

    async def health(self) -> HealthReport:
        """The state of each part: database, Redis, exchange queue, writer, own errors.

        Answers within :data:`HEALTH_WAIT_SECONDS` whatever storage does: the parts are
        probed at once, and a part whose probe has not answered that long after it began
        is reported unreachable. The probe itself goes on (bounded by
        ``connect_timeout_seconds``) and later health checks report on that same probe
        rather than start another, so polling a silent server costs one connection
        attempt at a time (and a slow server still gets its connection made).
        """
        redis_configured = self.config.redis_url is not None
        database, redis = await asyncio.gather(
            self._probe("database", self.store),
            self._probe("redis", self.exchanges) if redis_configured else _nothing(),
        )
        database["backend"] = type(self.store).__name__
        report = HealthReport(
            database=database,
            exchange_queue={
                "depth": self.writer.depth,
                "max": self.writer.maxsize,
                "dropped": self.writer.dropped,
                "written": self.writer.written,
                "failed": self.writer.failed,
                "retries": self.writer.retries,
                "duplicates": int(getattr(self.exchanges, "duplicates", 0)),
            },
            writer={"alive": self.writer.alive},
            internal_errors=self.errors.snapshot(),
            startup_error=self.startup_error,
        )
        healthy = bool(database["reachable"])
        if redis_configured:
            report["redis"] = redis
            healthy = healthy and bool(redis["reachable"])
        else:
            report["redis"] = {"configured": False}
        report["healthy"] = healthy
        if healthy and not self.started:
            self.started = True
            self.startup_error = None
        return report

    async def _probe(self, part: str, target: object) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        began, task = self._probes.get(part, (0.0, None))
        if task is None or task.done() or task.get_loop() is not loop:
            probe = _probe(target, self.config.connect_timeout_seconds)
            began, task = loop.time(), loop.create_task(probe, name=f"feedback-asgi {part} probe")
            self._probes[part] = began, task
        left = began + HEALTH_WAIT_SECONDS - loop.time()
        if left > 0:
            await asyncio.wait({task}, timeout=left)
        if not task.done() or task.cancelled():
            return {"configured": True, "reachable": False, "latency_ms": None,
                    "error": f"no answer within {HEALTH_WAIT_SECONDS} s"}
        return dict(task.result())

    async def find_exchange(self, trace_id: str, *, force: bool = False) -> Exchange | None:
        """The exchange for ``trace_id``: the stored one, else one queued, not yet written.

        The store first: a stored exchange is never replaced, so a later capture under
        the same id waiting in the queue is not the one feedback rates. ``force`` asks a
        Redis exchange store even during its pause after a failure.
        """
        if force and isinstance(self.exchanges, _Forceable):
            stored = await self.exchanges.get(trace_id, force=True)
        else:
            stored = await self.exchanges.get(trace_id)
        return stored if stored is not None else self.writer.find(trace_id)


@runtime_checkable
class _Forceable(Protocol):
    """An exchange store that skips lookups for a while after a failure (Redis), unless
    told to ``force`` one."""

    @property
    def redis_bypassed(self) -> int: ...

    async def get(self, trace_id: str, *, force: bool = False) -> Exchange | None: ...


async def _nothing() -> dict[str, Any]:
    return {}


async def _probe(target: object, seconds: float) -> dict[str, Any]:
    ping = getattr(target, "ping", None)
    if ping is None:
        return {"configured": True, "reachable": True, "latency_ms": None}
    started = time.perf_counter()
    try:
        await asyncio.wait_for(ping(), seconds)
    except Exception as exc:
        return {"configured": True, "reachable": False, "latency_ms": None,
                "error": f"{type(exc).__name__}: {exc}"}
    return {"configured": True, "reachable": True,
            "latency_ms": round((time.perf_counter() - started) * 1000.0, 3)}
