"""``manage.py feedback_export KIND``: the same export, options and lines as ``feedback-asgi export``.

    manage.py feedback_export finetune|preferences|kto|labels [--format openai] [--since T]
        [--until T] [--model M] [--intent I] [--project P] [--request-id R]
        [--otel-trace-id T] [--include-neutral]
        [--positive-weight W] [--negative-weight W] [--out FILE]

Bad options (a time outside 1970-01-01..9999-01-01 UTC, a filter no item can match) are a
``CommandError`` with exit status 2; an unreachable database, status 1.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from feedback_asgi.core.exceptions import FeedbackValidationError, StorageUnavailableError
from feedback_asgi.export import (
    ExportFormat,
    ExportKind,
    ExportOptions,
    ExportReport,
    parse_moment,
    write_export,
)
from feedback_asgi.integrations.django.conf import build_kit


class Command(BaseCommand):
    help = "Export live feedback as JSON Lines for a trainer (last 7 days by default)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", nargs="?", default=ExportKind.FINETUNE.value,
                            choices=[kind.value for kind in ExportKind])
        parser.add_argument("--format", default=ExportFormat.DEFAULT.value,
                            choices=[fmt.value for fmt in ExportFormat])
        parser.add_argument("--since", help="ISO 8601 start (default: 7 days ago)")
        parser.add_argument("--until", help="ISO 8601 end, excluded (default: now)")
        parser.add_argument("--model")
        parser.add_argument("--intent")
        parser.add_argument("--project")
        parser.add_argument("--request-id", help="only responses to this client request id")
        parser.add_argument("--otel-trace-id",
                            help="only responses within this OpenTelemetry trace")
        parser.add_argument("--include-neutral", action="store_true")
        parser.add_argument("--positive-weight", type=float, default=2.0)
        parser.add_argument("--negative-weight", type=float, default=0.5)
        parser.add_argument("--out", default="-", help="file to write ('-': standard output)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            export_options = ExportOptions(
                kind=options["kind"], format=options["format"],
                since=parse_moment(options["since"]), until=parse_moment(options["until"]),
                model=options["model"], intent=options["intent"], project=options["project"],
                request_id=options["request_id"], otel_trace_id=options["otel_trace_id"],
                include_neutral=options["include_neutral"],
                positive_weight=options["positive_weight"],
                negative_weight=options["negative_weight"],
            ).resolved()
        except FeedbackValidationError as exc:
            raise CommandError(exc.message, returncode=2) from None
        except ValueError as exc:
            raise CommandError(str(exc), returncode=2) from None
        kit = build_kit()

        async def run(write: Any) -> ExportReport:
            try:
                return await write_export(kit.store, export_options, write)
            finally:
                await kit.store.close()

        out = options["out"]
        try:
            if out == "-":
                report = asyncio.run(run(self.stdout.write if self.stdout else sys.stdout.write))
            else:
                partial = out + ".partial"
                try:
                    with open(partial, "w", encoding="utf-8", newline="\n") as handle:
                        report = asyncio.run(run(handle.write))
                except BaseException:
                    if os.path.exists(partial):
                        os.unlink(partial)
                    raise
                os.replace(partial, out)
        except StorageUnavailableError as exc:
            raise CommandError(exc.message) from None
        self.stderr.write(f"{report.written} lines from {report.scanned} rows "
                          f"(skipped: {dict(sorted(report.skipped.items()))})")
