"""Shared by the terminal commands: the store from ``--database-url``, one-line errors, and
:func:`cell`, through which every value from users or stored data reaches the terminal:
:func:`~feedback_asgi.terminal.escape.printable` text in a :class:`rich.text.Text`, never
markup, so control characters show escaped and ``[bold red]`` in data shows as is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console
from rich.text import Text

from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.core.exceptions import (
    ConfigurationError,
    FeedbackValidationError,
    StorageUnavailableError,
)
from feedback_asgi.storage.base import FeedbackStoreProtocol
from feedback_asgi.terminal.escape import printable

__all__ = [
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "cell",
    "errors",
    "fail",
    "open_store",
    "run",
]

T = TypeVar("T")

EXIT_USAGE = 2
"""Exit code of bad input: a bad URL, window, date or option."""
EXIT_UNAVAILABLE = 1
"""Exit code when the database cannot be reached."""

errors = Console(stderr=True, highlight=False)


def cell(value: object, style: str = "") -> Text:
    """``value`` as :func:`printable` text that rich shows literally (no markup)."""
    return Text(printable(value), style=style)


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print ``error: message`` on one line of stderr; raise the returned ``typer.Exit``."""
    first = message.splitlines()[0] if message else ""
    errors.print(Text.assemble(("error:", "red"), " ", printable(first)), soft_wrap=True)
    return typer.Exit(code=code)


def open_store(database_url: str | None) -> FeedbackStoreProtocol:
    """The store for ``--database-url`` (else ``FEEDBACK_ASGI_DATABASE_URL``); reads only.

    The CLI never creates tables: a database without them is reported, not changed.
    """
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    from feedback_asgi.storage.factory import build_store, is_memory_url

    try:
        values: dict[str, object] = {"create_tables": False}
        if database_url is not None:
            values["database_url"] = database_url
        config = FeedbackConfig(**values)
        if not is_memory_url(config.database_url):
            from feedback_asgi.storage.sql.store import normalize_database_url

            normalize_database_url(config.database_url).get_dialect()  # unknown scheme/driver
        return build_store(config.model_copy(update={"redis_url": None}))
    except ConfigurationError as exc:
        raise fail(str(exc)) from None
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise fail(f"bad database URL: {exc}") from None
    except ImportError as exc:
        raise fail(f"the database driver is not installed: {exc}") from None


def run(store: FeedbackStoreProtocol, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` on a new event loop, close the store, turn known failures into one line."""

    async def main() -> T:
        try:
            return await work()
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except FeedbackValidationError as exc:
        raise fail(exc.message) from None
    except StorageUnavailableError as exc:
        raise fail(str(exc), EXIT_UNAVAILABLE) from None
    except ValueError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"{type(exc).__name__}: {exc}", EXIT_UNAVAILABLE) from None

