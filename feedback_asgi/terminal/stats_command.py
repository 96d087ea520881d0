"""``feedback-asgi stats`` (a table) and ``feedback-asgi dashboard`` (a live view).

Every value from stored data (group keys, kind names, models, comments) and from the
command line goes into the tables as :func:`~feedback_asgi.terminal.common.cell` text:
control characters escaped, markup shown literally.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from feedback_asgi.analytics import GROUP_KEYS, StatsReport, feedback_stats, parse_window
from feedback_asgi.core.exceptions import FeedbackValidationError
from feedback_asgi.core.records import FeedbackItem, FeedbackType
from feedback_asgi.export import parse_moment
from feedback_asgi.storage.base import FeedbackStoreProtocol
from feedback_asgi.terminal.common import cell, fail, open_store, run

__all__ = ["dashboard", "stats"]

console = Console()
RECENT_NEGATIVE = 8
"""Negative items shown by the dashboard (each frame reads at most 4x this many rows)."""
BAR_WIDTH = 20

DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="Defaults to FEEDBACK_ASGI_DATABASE_URL.",
                 show_default=False),
]
Window = Annotated[str, typer.Option(help="How far back: 90m, 24h, 7d, 30d, 2w...")]


def _check(window: str, by: str | None) -> None:
    try:
        parse_window(window)
    except FeedbackValidationError as exc:
        raise fail(exc.message) from None
    if by is not None and by not in GROUP_KEYS:
        raise fail(f"--by: one of {', '.join(GROUP_KEYS)}")


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _rating(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _bar(rate: float | None) -> Text:
    if rate is None:
        return Text("")
    filled = round(rate * BAR_WIDTH)
    style = "green" if rate >= 0.8 else "yellow" if rate >= 0.5 else "red"
    return Text("█" * filled, style=style) + Text("░" * (BAR_WIDTH - filled), style="dim")


def stats_table(report: StatsReport, *, bars: bool = False) -> Table:
    """One row per group (then the totals): counts, thumbs, accuracy, average rating."""
    title = f"{report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M} UTC"
    table = Table(title=title, title_justify="left")
    table.add_column(report.by or "all")
    for name in ("items", "up", "down", "accuracy"):
        table.add_column(name, justify="right")
    if bars:
        table.add_column("", min_width=BAR_WIDTH, no_wrap=True)
    table.add_column("avg rating", justify="right")
    if not bars:  # the dashboard keeps to 80 columns
        table.add_column("by type")
    rows = list(report.groups)
    if report.by is not None and report.totals is not None:
        rows.append(report.totals)
    for index, group in enumerate(rows):
        is_total = report.by is not None and index == len(rows) - 1
        name = "total" if is_total else (group.key if group.key is not None else "(none)")
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(group.count_by_type.items()))
        cells: list[str | Text] = [
            cell(name), f"{group.total_count:,}", f"{group.thumbs_up:,}",
            f"{group.thumbs_down:,}", _percent(group.thumbs_up_rate),
        ]
        if bars:
            cells.append(_bar(group.thumbs_up_rate))
        cells.append(_rating(group.average_rating))
        if not bars:
            cells.append(cell(kinds))
        table.add_row(*cells, style="bold" if is_total else None)
    return table


def stats(
    window: Window = "7d",
    by: Annotated[str | None, typer.Option(help=f"Group by: {', '.join(GROUP_KEYS)}.")] = None,
    since: Annotated[str | None, typer.Option(help="ISO 8601 start (overrides --window).")] = None,
    until: Annotated[str | None, typer.Option(help="ISO 8601 end (default: now).")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    provider: Annotated[str | None, typer.Option(help="Only this provider.")] = None,
    intent: Annotated[str | None, typer.Option(help="Only this intent.")] = None,
    project: Annotated[str | None, typer.Option(help="Only this project.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON the routes send.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Feedback figures over a window, optionally per model, provider, intent or project."""
    _check(window, by)
    try:
        start, end = parse_moment(since), parse_moment(until)
    except ValueError as exc:
        raise fail(str(exc)) from None
    store = open_store(database_url)

    async def work() -> StatsReport:
        return await feedback_stats(store, window=window, since=start, until=end, by=by,
                                    model=model, provider=provider, intent=intent,
                                    project=project)

    report = run(store, work)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        console.print(stats_table(report))


async def recent_negative(store: FeedbackStoreProtocol, since: datetime) -> list[FeedbackItem]:
    """The newest thumbs-down and low ratings (at most :data:`RECENT_NEGATIVE`)."""
    found: list[FeedbackItem] = []
    for kind in (FeedbackType.THUMBS, FeedbackType.RATING):
        page = await store.query(type=kind, since=since, limit=RECENT_NEGATIVE * 2)
        for item in page.items:
            value = item.value
            if (kind == FeedbackType.THUMBS and value == -1) or (
                kind == FeedbackType.RATING and isinstance(value, int | float) and value <= 2
            ):
                found.append(item)
    found.sort(key=lambda item: (item.created_at, item.id), reverse=True)
    return found[:RECENT_NEGATIVE]


def _negative_table(items: list[FeedbackItem]) -> Table:
    table = Table(expand=True, show_edge=False)
    table.add_column("when (UTC)", no_wrap=True)
    table.add_column("model")
    table.add_column("feedback")
    table.add_column("comment", ratio=1)
    for item in items:
        value = "👎" if item.feedback_type == FeedbackType.THUMBS else f"{item.value}★"
        table.add_row(f"{item.created_at:%m-%d %H:%M:%S}", cell(item.context.get("model", "-")),
                      cell(value), cell(item.comment or ""))
    return table


async def dashboard_frame(store: FeedbackStoreProtocol, window: str, by: str) -> Group:
    """One frame: totals, accuracy per group with bars, recent negative feedback."""
    report = await feedback_stats(store, window=window, by=by)
    totals = report.totals
    assert totals is not None
    summary = Text.assemble(
        ("items ", "dim"), f"{totals.total_count:,}   ",
        ("up ", "dim"), (f"{totals.thumbs_up:,}", "green"), "   ",
        ("down ", "dim"), (f"{totals.thumbs_down:,}", "red"), "   ",
        ("accuracy ", "dim"), _percent(totals.thumbs_up_rate), "   ",
        ("avg rating ", "dim"), _rating(totals.average_rating),
    )
    negatives = await recent_negative(store, report.since)
    return Group(
        Panel(summary, title=cell(f"feedback, last {window}")),
        stats_table(report, bars=True),
        Panel(_negative_table(negatives), title="recent negative feedback"),
    )


def dashboard(
    window: Window = "24h",
    by: Annotated[str, typer.Option(help=f"Group by: {', '.join(GROUP_KEYS)}.")] = "model",
    refresh: Annotated[float, typer.Option(help="Seconds between frames.", min=0.5)] = 5.0,
    once: Annotated[bool, typer.Option("--once", help="Print one frame and exit.")] = False,
    frames: Annotated[int, typer.Option(help="Stop after this many frames (0: until Ctrl-C).",
                                        min=0)] = 0,
    database_url: DatabaseUrl = None,
) -> None:
    """A live terminal dashboard: totals, accuracy by model with bars, recent negative feedback."""
    _check(window, by)
    store = open_store(database_url)

    async def work() -> None:
        if once:
            console.print(await dashboard_frame(store, window, by))
            return
        shown = 0
        with Live(await dashboard_frame(store, window, by), console=console,
                  auto_refresh=False) as live:
            shown = 1
            while frames == 0 or shown < frames:
                await asyncio.sleep(refresh)
                live.update(await dashboard_frame(store, window, by), refresh=True)
                shown += 1

    try:
        run(store, work)
    except KeyboardInterrupt:
        raise typer.Exit(code=0) from None
