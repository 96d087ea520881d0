"""``manage.py feedback_stats``: the figures of ``feedback-asgi stats`` (analytics), as text or JSON.

    manage.py feedback_stats [--window 7d] [--by model] [--since T] [--until T]
        [--model M] [--provider P] [--intent I] [--project P] [--json]

Bad options (a time outside 1970-01-01..9999-01-01 UTC, a bad window, a filter no item can
match) are a ``CommandError`` with exit status 2; an unreachable database, status 1.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from feedback_asgi.analytics import GROUP_KEYS, StatsReport, feedback_stats
from feedback_asgi.core.exceptions import FeedbackValidationError, StorageUnavailableError
from feedback_asgi.export import parse_moment
from feedback_asgi.integrations.django.conf import build_kit
from feedback_asgi.terminal.escape import printable


class Command(BaseCommand):
    help = "Feedback figures over live items: counts by type, average rating, thumbs-up rate."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--window", default="7d", help="90m, 24h, 7d, 30d, 2w...")
        parser.add_argument("--by", choices=list(GROUP_KEYS))
        parser.add_argument("--since", help="ISO 8601 start (inclusive); overrides the window")
        parser.add_argument("--until", help="ISO 8601 end (exclusive; default now)")
        for name in ("model", "provider", "intent", "project"):
            parser.add_argument(f"--{name}")
        parser.add_argument("--json", action="store_true", help="print the routes' JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            since, until = parse_moment(options["since"]), parse_moment(options["until"])
        except ValueError as exc:
            raise CommandError(str(exc), returncode=2) from None
        kit = build_kit()

        async def run() -> StatsReport:
            try:
                return await feedback_stats(
                    kit.store, window=options["window"], since=since, until=until,
                    by=options["by"], model=options["model"], provider=options["provider"],
                    intent=options["intent"], project=options["project"])
            finally:
                await kit.store.close()

        try:
            report = asyncio.run(run())
        except FeedbackValidationError as exc:
            raise CommandError(exc.message, returncode=2) from None
        except StorageUnavailableError as exc:
            raise CommandError(exc.message) from None
        if options["json"]:
            self.stdout.write(json.dumps(report.to_dict(), ensure_ascii=False))
            return
        groups = list(report.groups)
        for group in groups if report.by else groups[:1]:
            label = (group.key or "(none)") if report.by else "all"
            figures = group.to_dict()  # kind names are stored data too: all of it escaped
            self.stdout.write(printable(f"{label}: " + ", ".join(f"{k} {v}"
                                                                 for k, v in figures.items())))
        if report.by and report.totals is not None:
            totals = report.totals.to_dict()
            self.stdout.write(printable("total: " + ", ".join(f"{k} {v}"
                                                          for k, v in totals.items())))
