"""``manage.py feedback_stats [--window-hours H] [--since T] [--until T] [--model M] [--json]``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from feedback_asgi.integrations.django.conf import build_kit
from feedback_asgi.integrations.django.reports import parse_moment, stats


class Command(BaseCommand):
    help = "Feedback figures over live items: counts by type, average rating, thumbs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--window-hours", type=float, default=24.0)
        parser.add_argument("--since", help="ISO 8601 start (inclusive); overrides the window")
        parser.add_argument("--until", help="ISO 8601 end (exclusive)")
        parser.add_argument("--model")
        parser.add_argument("--provider")
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            since, until = parse_moment(options["since"]), parse_moment(options["until"])
        except ValueError as exc:
            raise CommandError(f"bad date: {exc}") from None
        kit = build_kit()

        async def run() -> dict[str, Any]:
            try:
                return await stats(kit.store, window_hours=options["window_hours"],
                                   model=options["model"], provider=options["provider"],
                                   since=since, until=until)
            finally:
                await kit.store.close()

        figures = asyncio.run(run())
        if options["json"]:
            self.stdout.write(json.dumps(figures))
            return
        for key, value in figures.items():
            self.stdout.write(f"{key}: {value}")
