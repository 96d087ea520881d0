"""``feedback-asgi export KIND``: training data as JSON Lines, to a file or stdout."""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import IO, Annotated

import typer
from rich.progress import (
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from feedback_asgi.export import (
    ExportFormat,
    ExportKind,
    ExportOptions,
    ExportReport,
    parse_moment,
    write_export,
)
from feedback_asgi.storage.base import FeedbackStoreProtocol
from feedback_asgi.terminal.common import cell, errors, fail, open_store, run

__all__ = ["export"]


class _RowsPerSecond(ProgressColumn):
    """Rows read per second since the start."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        rate = task.completed / elapsed if elapsed > 0 else 0.0
        return Text(f"{rate:,.0f} rows/s", style="progress.data.speed")


def _moment(name: str, text: str | None) -> datetime | None:
    try:
        return parse_moment(text)
    except ValueError as exc:
        raise fail(f"--{name}: {exc}") from None


def export(
    kind: Annotated[ExportKind, typer.Argument(help="finetune, preferences, kto or labels.")],
    format: Annotated[
        ExportFormat, typer.Option("--format", help="default, or openai (finetune, preferences).")
    ] = ExportFormat.DEFAULT,
    since: Annotated[str | None, typer.Option(help="ISO 8601 start (default: 7 days ago).")] = None,
    until: Annotated[str | None, typer.Option(help="ISO 8601 end, excluded (default: now).")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    intent: Annotated[str | None, typer.Option(help="Only this intent.")] = None,
    project: Annotated[str | None, typer.Option(help="Only this project.")] = None,
    request_id: Annotated[
        str | None, typer.Option(help="Only responses to this client request id.")
    ] = None,
    otel_trace_id: Annotated[
        str | None, typer.Option(help="Only responses within this OpenTelemetry trace.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="File to write (default: standard output).")
    ] = None,
    include_neutral: Annotated[
        bool, typer.Option("--include-neutral", help="Keep neutral feedback (finetune).")
    ] = False,
    positive_weight: Annotated[float, typer.Option(help="Weight of positive examples.")] = 2.0,
    negative_weight: Annotated[float, typer.Option(help="Weight of negative examples.")] = 0.5,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="Defaults to FEEDBACK_ASGI_DATABASE_URL.",
                     show_default=False),
    ] = None,
) -> None:
    """Export live feedback as JSON Lines for a trainer (oldest first, last 7 days by default)."""
    from feedback_asgi.core.exceptions import FeedbackValidationError

    try:
        options = ExportOptions(
            kind=kind, format=format, since=_moment("since", since), until=_moment("until", until),
            model=model, intent=intent, project=project, request_id=request_id,
            otel_trace_id=otel_trace_id, include_neutral=include_neutral,
            positive_weight=positive_weight, negative_weight=negative_weight,
        ).resolved()
    except FeedbackValidationError as exc:
        raise fail(exc.message) from None
    store = open_store(database_url)
    target = out.with_name(out.name + ".partial") if out is not None else None
    stream: IO[str] = sys.stdout
    if target is not None:
        try:
            stream = open(target, "w", encoding="utf-8", newline="\n", buffering=1 << 20)  # noqa: SIM115
        except OSError as exc:
            raise fail(f"cannot write {out}: {exc.strerror}") from None
    started = time.perf_counter()
    try:
        report = _run_export(store, options, stream)
    except BaseException:
        if target is not None:
            stream.close()
            target.unlink(missing_ok=True)
        raise
    if target is not None and out is not None:
        stream.close()
        os.replace(target, out)
    else:
        stream.flush()
    seconds = time.perf_counter() - started
    skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(report.skipped.items()))
    errors.print(
        cell(f"{report.written:,} lines to {out or 'stdout'} from {report.scanned:,} rows "
             f"in {seconds:.1f} s" + (f" (skipped: {skipped})" if skipped else "")),
        soft_wrap=True,
    )


def _run_export(store: FeedbackStoreProtocol, options: ExportOptions, stream: IO[str]) -> ExportReport:
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        TextColumn("{task.completed:,} rows"),
        _RowsPerSecond(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
        disable=not errors.is_terminal,
    )
    task = progress.add_task(f"export {options.kind}", total=None)

    def advance(report: ExportReport) -> None:
        progress.update(task, completed=report.scanned)

    async def work() -> ExportReport:
        with progress:
            return await write_export(store, options, stream.write, on_progress=advance)

    return run(store, work)
