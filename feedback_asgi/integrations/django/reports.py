"""What ``feedback_stats`` and ``feedback_export`` do, over any feedback store.

Framework-neutral (a store in, text out) so the CLI can share it; the management commands
only parse options and run these.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from feedback_asgi.storage.base import FeedbackStoreProtocol

__all__ = ["export_jsonl", "parse_moment", "stats"]


def parse_moment(text: str | None) -> datetime | None:
    """An ISO 8601 date or timestamp (naive means UTC), or ``None``; ``ValueError`` if bad."""
    if text is None or text == "":
        return None
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


async def stats(
    store: FeedbackStoreProtocol,
    *,
    window_hours: float = 24,
    model: str | None = None,
    provider: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """The store's aggregate over live items, as a JSON-ready dict."""
    summary = await store.aggregate(
        window_hours=window_hours, model=model, provider=provider, since=since, until=until
    )
    return summary.to_dict()


async def export_jsonl(
    store: FeedbackStoreProtocol,
    write: Callable[[str], Any],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    model: str | None = None,
    batch_size: int = 1000,
) -> int:
    """Write live items (oldest first) as JSON Lines through ``write``; returns the count."""
    count = 0
    async for item in store.iter_items(since=since, until=until, batch_size=batch_size):
        if model is not None and item.context.get("model") != model:
            continue
        write(json.dumps(item.to_dict(), ensure_ascii=False, default=str) + "\n")
        count += 1
    return count
