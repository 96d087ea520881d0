"""What the dashboard shows, read from the store: :func:`load_dashboard`.

Totals and per-model figures come from :mod:`feedback_asgi.analytics` (computed in the
database); the thumbs-up series per model is ``feedback_timeseries(by="model")``, hourly
for a day's window and daily otherwise. The latest negative feedback is read newest first,
a bounded number of rows per kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from feedback_asgi.analytics import StatsReport, feedback_stats, feedback_timeseries
from feedback_asgi.core.records import FeedbackItem, FeedbackType
from feedback_asgi.storage.stats import GroupStats, Interval

if TYPE_CHECKING:
    from feedback_asgi.core.config import FeedbackConfig
    from feedback_asgi.storage.base import FeedbackStoreProtocol

__all__ = [
    "NEGATIVE_LIMIT",
    "WINDOWS",
    "DashboardData",
    "is_negative",
    "latest_negative",
    "load_dashboard",
]

WINDOWS: dict[str, Interval] = {"24h": "hour", "7d": "day", "30d": "day", "90d": "day"}
"""The windows the page offers, and the series interval of each."""
NEGATIVE_LIMIT = 20
"""Negative items listed."""
_PAGE_SIZE = 100
_MAX_PAGES = 5
"""Rows read per kind at most (``_PAGE_SIZE * _MAX_PAGES``) while looking for negatives."""
_NEGATIVE_KINDS = (FeedbackType.THUMBS, FeedbackType.RATING, FeedbackType.CORRECTION)


@dataclass(frozen=True, slots=True)
class DashboardData:
    """Everything one dashboard page shows."""

    window: str
    stats: StatsReport
    """``feedback_stats(window, by="model")``: ``totals`` and one group per model."""
    series: StatsReport
    """``feedback_timeseries(window, interval, by="model")``."""
    negatives: list[FeedbackItem]

    @property
    def totals(self) -> GroupStats:
        """Figures over the whole window."""
        return self.stats.totals or GroupStats()

    @property
    def since(self) -> datetime:
        """Start of the window."""
        return self.stats.since

    @property
    def until(self) -> datetime:
        """End of the window (now)."""
        return self.stats.until


def is_negative(item: FeedbackItem, config: FeedbackConfig) -> bool:
    """Thumbs down, a rating in the lowest quarter of the scale, or a correction."""
    if item.feedback_type == FeedbackType.THUMBS:
        return bool(item.value == -1)
    if item.feedback_type == FeedbackType.RATING:
        low = config.rating_min + (config.rating_max - config.rating_min) / 4
        value = item.value
        return isinstance(value, int | float) and not isinstance(value, bool) and value <= low
    return item.feedback_type == FeedbackType.CORRECTION


async def latest_negative(
    store: FeedbackStoreProtocol, config: FeedbackConfig, since: datetime, until: datetime,
    limit: int = NEGATIVE_LIMIT,
) -> list[FeedbackItem]:
    """The newest negative live items in ``[since, until)``, newest first, at most ``limit``."""
    found: list[FeedbackItem] = []
    for kind in _NEGATIVE_KINDS:
        cursor: str | None = None
        kept = 0
        for _ in range(_MAX_PAGES):
            page = await store.query(type=kind, since=since, until=until, limit=_PAGE_SIZE,
                                     cursor=cursor)
            for item in page.items:
                if is_negative(item, config):
                    found.append(item)
                    kept += 1
            cursor = page.next_cursor
            if cursor is None or kept >= limit:
                break
    found.sort(key=lambda item: (item.created_at, item.id), reverse=True)
    return found[:limit]


async def load_dashboard(
    store: FeedbackStoreProtocol, config: FeedbackConfig, window: str
) -> DashboardData:
    """Read the figures for ``window`` (a key of :data:`WINDOWS`)."""
    stats = await feedback_stats(store, window=window, by="model")
    # the same bounds for every part, so the figures agree with each other
    series = await feedback_timeseries(store, interval=WINDOWS[window], since=stats.since,
                                       until=stats.until, by="model")
    negatives = await latest_negative(store, config, stats.since, stats.until)
    return DashboardData(window, stats, series, negatives)
