"""Settings in one place: the ``FEEDBACK_ASGI`` dict, read live, and the kit built from it.

``FEEDBACK_ASGI = {...}`` takes the keys of :class:`~feedback_asgi.core.config.FeedbackConfig`;
``FEEDBACK_ASGI_*`` environment variables override them. :func:`get_kit` builds the kit
once and keeps it until the setting changes (``override_settings`` included) or
:func:`set_kit`/:func:`reset_kit` is called. The kit stores feedback through
:class:`~feedback_asgi.integrations.django.store.DjangoFeedbackStore`, unless
``database_url`` is set (in the dict or the environment): then the SQLAlchemy store.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from django.conf import settings

from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.kit import FeedbackKit

__all__ = ["FeedbackSettings", "build_kit", "conf", "get_kit", "reset_kit", "set_kit"]


class FeedbackSettings:
    """Live views of the settings this app reads (so ``override_settings`` works)."""

    @property
    def options(self) -> Mapping[str, Any]:
        """The ``FEEDBACK_ASGI`` dict (empty when unset)."""
        value = getattr(settings, "FEEDBACK_ASGI", None)
        return value if isinstance(value, Mapping) else {}

    def config(self) -> FeedbackConfig:
        """``FeedbackConfig`` from the dict, environment variables winning."""
        return FeedbackConfig.from_mapping(self.options)

    @staticmethod
    def uses_django_store(config: FeedbackConfig) -> bool:
        """Whether feedback goes to the Django database (no ``database_url`` given)."""
        return "database_url" not in config.model_fields_set

    @property
    def debug(self) -> bool:
        """``settings.DEBUG``."""
        return bool(getattr(settings, "DEBUG", False))


conf = FeedbackSettings()

_kit: FeedbackKit | None = None
_lock = threading.Lock()
_background: Any = None


def build_kit(config: FeedbackConfig | None = None) -> FeedbackKit:
    """A kit for this project: Django ORM store (or SQL store), exchanges in memory or Redis."""
    from feedback_asgi.storage.factory import build_exchange_store, build_store

    global _background
    config = config if config is not None else conf.config()
    if conf.uses_django_store(config):
        from feedback_asgi.integrations.django.store import DjangoFeedbackStore

        store: Any = DjangoFeedbackStore(config=config)
    else:
        store = build_store(config)
    exchanges: Any = build_exchange_store(config)
    if not hasattr(exchanges, "put_nowait"):
        # Redis: all its I/O on one background loop (WSGI has no loop of its own)
        from feedback_asgi.integrations.django.background import (
            BackgroundLoop,
            LoopExchangeStore,
        )

        if _background is None:
            _background = BackgroundLoop()
        exchanges = LoopExchangeStore(exchanges, _background,
                                      max_pending=config.exchange_queue_size)
    return FeedbackKit(config, store=store, exchanges=exchanges, synchronous_writer=True)


def get_kit() -> FeedbackKit:
    """The project's kit, built from the settings on first use."""
    global _kit
    kit = _kit
    if kit is None:
        with _lock:
            if _kit is None:
                _kit = build_kit()
            kit = _kit
    return kit


def set_kit(kit: FeedbackKit | None) -> None:
    """Use ``kit`` from now on (``None``: build a new one from the settings on next use)."""
    global _kit
    with _lock:
        _kit = kit


def reset_kit() -> None:
    """Forget the kit (the settings changed)."""
    set_kit(None)
