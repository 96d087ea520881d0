"""``manage.py feedback_export [--since T] [--until T] [--model M] [--out FILE]``: JSON Lines."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from feedback_asgi.integrations.django.conf import build_kit
from feedback_asgi.integrations.django.reports import export_jsonl, parse_moment


class Command(BaseCommand):
    help = "Export live feedback items as JSON Lines, oldest first."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", help="ISO 8601 start (inclusive)")
        parser.add_argument("--until", help="ISO 8601 end (exclusive)")
        parser.add_argument("--model")
        parser.add_argument("--out", default="-", help="file to write ('-': standard output)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            since, until = parse_moment(options["since"]), parse_moment(options["until"])
        except ValueError as exc:
            raise CommandError(f"bad date: {exc}") from None
        kit = build_kit()
        out = options["out"]

        async def run(write: Any) -> int:
            try:
                return await export_jsonl(kit.store, write, since=since, until=until,
                                          model=options["model"])
            finally:
                await kit.store.close()

        if out == "-":
            count = asyncio.run(run(self.stdout.write if self.stdout else sys.stdout.write))
        else:
            with open(out, "w", encoding="utf-8") as handle:
                count = asyncio.run(run(handle.write))
        self.stderr.write(f"exported {count} items")
