"""The export as a stream of text chunks (each one or more whole lines), over any store.

Items come from ``store.iter_items`` (live items only, oldest first by ``created_at`` then
``id``, ``batch_size`` at a time), so an edited item is exported as its latest version
and a retracted one not at all, and the order is the same on every run over the same data.
On PostgreSQL with asyncpg the finetune export takes a fast path
(:mod:`feedback_asgi.export.postgres`) that renders the same bytes.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from feedback_asgi.core.records import FeedbackItem, FeedbackType
from feedback_asgi.export.exchange import answer_text, corrected_text, polarity, prompt_messages
from feedback_asgi.export.options import ExportKind, ExportOptions, ExportReport
from feedback_asgi.export.pairs import VoteSpill, pair_votes
from feedback_asgi.export.records import item_line, matches_filters, pair_line
from feedback_asgi.storage.base import FeedbackStoreProtocol

__all__ = ["export_chunks", "write_export"]

ProgressCallback = Callable[[ExportReport], Any]


async def export_chunks(
    store: FeedbackStoreProtocol,
    options: ExportOptions,
    report: ExportReport | None = None,
    *,
    fast_path: bool = True,
) -> AsyncGenerator[str, None]:
    """The export's lines, a batch at a time (each chunk ends with ``"\\n"``).

    ``options`` without ``until`` is resolved when the stream starts (see
    :meth:`ExportOptions.resolved`). ``report`` is updated as the stream goes.
    ``fast_path=False`` forces the generic path (tests compare both).
    """
    options = options.resolved()
    report = report if report is not None else ExportReport()
    source: AsyncIterator[str] | None = None
    if options.kind is ExportKind.PREFERENCES:
        source = _preferences(store, options, report)
    elif fast_path and options.kind is ExportKind.FINETUNE:
        from feedback_asgi.export.postgres import fast_finetune

        source = fast_finetune(store, options, report)
    if source is None:
        source = _per_item(store, options, report)
    async for chunk in source:
        if chunk:
            yield chunk


async def _per_item(
    store: FeedbackStoreProtocol, options: ExportOptions, report: ExportReport
) -> AsyncIterator[str]:
    lines: list[str] = []
    async for item in store.iter_items(
        since=options.since, until=options.until, batch_size=options.batch_size
    ):
        report.scanned += 1
        if not matches_filters(item, options):
            report.skipped["filtered"] += 1
        else:
            line = item_line(item, options, report)
            if line is not None:
                lines.append(line)
                report.written += 1
        if report.scanned % options.batch_size == 0:
            yield "".join(lines)
            lines = []
    yield "".join(lines)


async def _preferences(
    store: FeedbackStoreProtocol, options: ExportOptions, report: ExportReport
) -> AsyncIterator[str]:
    """Correction pairs as they come (time order), then vote pairs grouped by prompt."""
    spill = VoteSpill()
    try:
        lines: list[str] = []
        async for item in store.iter_items(
            since=options.since, until=options.until, batch_size=options.batch_size
        ):
            report.scanned += 1
            if not matches_filters(item, options):
                report.skipped["filtered"] += 1
            else:
                line = await _preference_item(item, options, report, spill)
                if line is not None:
                    lines.append(line)
                    report.written += 1
            if report.scanned % options.batch_size == 0:
                yield "".join(lines)
                lines = []
        yield "".join(lines)
        lines = []
        for prompt, chosen, rejected in pair_votes(spill.sorted_lines(), report):
            lines.append(pair_line(prompt, chosen, rejected, options))
            report.written += 1
            if len(lines) >= options.batch_size:
                yield "".join(lines)
                lines = []
        yield "".join(lines)
    finally:
        spill.close()


async def _preference_item(
    item: FeedbackItem, options: ExportOptions, report: ExportReport, spill: VoteSpill
) -> str | None:
    sign = polarity(item, options)
    if sign is None:
        report.skipped["not_applicable"] += 1
        return None
    if sign == 0:
        report.skipped["neutral"] += 1
        return None
    prompt = prompt_messages(item.context.get("input"))
    if item.feedback_type == FeedbackType.CORRECTION:
        chosen = corrected_text(item)
        original = item.value.get("original") if isinstance(item.value, dict) else None
        rejected = original if isinstance(original, str) and original else None
        if rejected is None:
            rejected = answer_text(item.context.get("output"))
        if prompt is None or chosen is None or rejected is None or chosen == rejected:
            report.skipped["no_exchange"] += 1
            return None
        return pair_line(prompt, chosen, rejected, options)
    answer = answer_text(item.context.get("output"))
    if prompt is None or answer is None:
        report.skipped["no_exchange"] += 1
        return None
    await spill.add(item, sign, prompt, answer)
    return None


async def write_export(
    store: FeedbackStoreProtocol,
    options: ExportOptions,
    write: Callable[[str], Any],
    *,
    on_progress: ProgressCallback | None = None,
    fast_path: bool = True,
) -> ExportReport:
    """Run an export, handing each chunk to ``write``; returns the report.

    ``on_progress(report)`` is called after each chunk (CLI progress bars).
    """
    report = ExportReport()
    async for chunk in export_chunks(store, options, report, fast_path=fast_path):
        write(chunk)
        if on_progress is not None:
            on_progress(report)
    return report

