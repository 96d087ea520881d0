"""The ``feedback-asgi`` command (needs ``pip install feedback-asgi[cli]``).

    feedback-asgi export finetune|preferences|kto|labels [--format openai] [--since T]
                  [--until T] [--model M] [--intent I] [--project P] [--out FILE]
    feedback-asgi stats [--window 7d] [--by model] [--json]
    feedback-asgi dashboard [--window 24h] [--by model] [--refresh 5] [--once]
    feedback-asgi demo [--host 127.0.0.1] [--port 8000]
    feedback-asgi db upgrade [--database-url URL] [--revision head]
    feedback-asgi db create  [--database-url URL]
    feedback-asgi db current [--database-url URL]

The database URL defaults to ``FEEDBACK_ASGI_DATABASE_URL`` (else the SQLite default).
Errors print one line on stderr and exit 2 (bad input) or 1 (database unreachable).
Nothing in the library imports this module.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text
from sqlalchemy.engine import make_url

from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.storage.factory import is_memory_url
from feedback_asgi.terminal.common import cell
from feedback_asgi.terminal.demo_command import demo
from feedback_asgi.terminal.escape import printable
from feedback_asgi.terminal.export_command import export
from feedback_asgi.terminal.stats_command import dashboard, stats

__all__ = ["app", "main"]

app = typer.Typer(name="feedback-asgi", help="Collect feedback on AI outputs.", no_args_is_help=True)
db_app = typer.Typer(help="Manage the feedback database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.command("export")(export)
app.command("stats")(stats)
app.command("dashboard")(dashboard)
app.command("demo")(demo)

console = Console()
errors = Console(stderr=True)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="SQLAlchemy URL; defaults to FEEDBACK_ASGI_DATABASE_URL or the SQLite default.",
        show_default=False,
    ),
]


def _database_url(given: str | None) -> str:
    url = given or FeedbackConfig().database_url
    if is_memory_url(url):
        errors.print("[red]error:[/] the memory store has no schema to migrate")
        raise typer.Exit(code=2)
    return url


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _fail(exc: Exception) -> typer.Exit:
    first = str(exc).splitlines()[0] if str(exc) else ""
    errors.print(Text.assemble(("error:", "red"), f" {type(exc).__name__}: {printable(first)}"))
    return typer.Exit(code=1)


@db_app.command("upgrade")
def db_upgrade(
    database_url: DatabaseUrl = None,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Apply the migrations (adopting a table the store created by itself)."""
    from feedback_asgi.storage.sql import migrations

    url = _database_url(database_url)
    try:
        migrations.upgrade(url, revision)
        now = migrations.current(url)
    except Exception as exc:
        raise _fail(exc) from exc
    console.print(cell(f"{_shown(url)}: at revision {now}"))


@db_app.command("create")
def db_create(database_url: DatabaseUrl = None) -> None:
    """Create the tables from the current schema and record the newest revision."""
    from feedback_asgi.storage.sql import migrations

    url = _database_url(database_url)
    try:
        migrations.create(url)
        now = migrations.current(url)
    except Exception as exc:
        raise _fail(exc) from exc
    console.print(cell(f"{_shown(url)}: tables created, at revision {now}"))


@db_app.command("current")
def db_current(database_url: DatabaseUrl = None) -> None:
    """Print the revision recorded in the database."""
    from feedback_asgi.storage.sql import migrations

    url = _database_url(database_url)
    try:
        now = migrations.current(url)
    except Exception as exc:
        raise _fail(exc) from exc
    console.print(cell(f"{_shown(url)}: at revision {now or 'none (not migrated)'}"))


def main() -> None:
    """Entry point of the ``feedback-asgi`` script."""
    app()


if __name__ == "__main__":
    main()
