"""Server-side SVG charts for the dashboard: no script, no library, nothing to load.

Each function returns markup for an inline ``<svg>`` whose every text comes through
:func:`html.escape`. Colours come from CSS classes (``series-N``, ``bar``) in the
dashboard's stylesheet, so the page stays within ``style-src 'self'``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape

from feedback_asgi.storage.stats import Interval, bucket_start

__all__ = ["MAX_SERIES", "Series", "bar_chart", "buckets", "line_chart"]

MAX_SERIES = 6
"""Lines drawn at most (the models with the most votes); the table lists every model."""
_WIDTH, _HEIGHT = 640, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 16, 12, 28
_MAX_X_LABELS = 7


@dataclass(frozen=True, slots=True)
class Series:
    """One line: a name and its value (0..1, or ``None`` for no data) per bucket."""

    name: str
    values: Sequence[float | None]


def buckets(since: datetime, until: datetime, interval: Interval) -> list[datetime]:
    """The bucket starts from the one holding ``since`` up to ``until`` (excluded)."""
    step = timedelta(hours=1) if interval == "hour" else timedelta(days=1)
    current = bucket_start(since, interval)
    found: list[datetime] = []
    while current < until:
        found.append(current)
        current += step
    return found


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _x_label(moment: datetime, interval: Interval) -> str:
    return moment.strftime("%H:%M" if interval == "hour" else "%b %d")


def line_chart(
    title: str, times: Sequence[datetime], series: Sequence[Series], interval: Interval
) -> str:
    """A line chart of rates (0-100 %) over ``times``; points without data are skipped."""
    plot_w = _WIDTH - _LEFT - _RIGHT
    plot_h = _HEIGHT - _TOP - _BOTTOM
    count = max(len(times), 1)

    def x(index: int) -> float:
        return _LEFT + (plot_w * (index + 0.5) / count)

    def y(rate: float) -> float:
        return _TOP + plot_h * (1.0 - rate)

    parts = [
        f'<svg class="chart line-chart" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" preserveAspectRatio="xMidYMid meet">',
        f"<title>{escape(title)}</title>",
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        ty = _number(y(tick))
        parts.append(f'<line class="grid" x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{ty}" '
                     f'y2="{ty}"/>')
        parts.append(f'<text class="axis" x="{_LEFT - 6}" y="{ty}" text-anchor="end" '
                     f'dominant-baseline="middle">{int(tick * 100)}%</text>')
    step = max(1, -(-len(times) // _MAX_X_LABELS))
    for index in range(0, len(times), step):
        parts.append(f'<text class="axis" x="{_number(x(index))}" y="{_HEIGHT - 8}" '
                     f'text-anchor="middle">{escape(_x_label(times[index], interval))}</text>')
    for number, line in enumerate(series[:MAX_SERIES]):
        points = [(index, value) for index, value in enumerate(line.values) if value is not None]
        css = f"series-{number}"
        if len(points) > 1:
            path = " ".join(f"{_number(x(i))},{_number(y(v))}" for i, v in points)
            parts.append(f'<polyline class="{css}" fill="none" points="{path}"/>')
        for index, value in points:
            label = f"{line.name}, {_x_label(times[index], interval)}: {value:.0%}"
            parts.append(f'<circle class="{css}" cx="{_number(x(index))}" '
                         f'cy="{_number(y(value))}" r="3.5"><title>{escape(label)}</title>'
                         "</circle>")
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(title: str, rows: Sequence[tuple[str, int]]) -> str:
    """Horizontal bars, one per ``(label, count)``, longest first as given."""
    width, row_h, label_w, count_w = 400, 34, 96, 56
    height = max(row_h * len(rows), row_h)
    top = max((count for _, count in rows), default=0) or 1
    bar_w = width - label_w - count_w
    parts = [
        f'<svg class="chart bar-chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" preserveAspectRatio="xMidYMid meet">',
        f"<title>{escape(title)}</title>",
    ]
    for index, (label, count) in enumerate(rows):
        middle = index * row_h + row_h / 2
        length = bar_w * count / top
        parts.append(f'<text class="label" x="{label_w - 10}" y="{_number(middle)}" '
                     f'text-anchor="end" dominant-baseline="middle">{escape(label)}</text>')
        parts.append(f'<rect class="bar" x="{label_w}" y="{_number(middle - 10)}" '
                     f'width="{_number(max(length, 2.0))}" height="20" rx="3"/>')
        parts.append(f'<text class="value" x="{_number(label_w + length + 8)}" '
                     f'y="{_number(middle)}" dominant-baseline="middle">{count}</text>')
    parts.append("</svg>")
    return "".join(parts)
