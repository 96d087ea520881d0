"""``feedback-asgi demo``: serve the FastAPI chat example, as ``make demo`` does."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from feedback_asgi.terminal.common import fail
from feedback_asgi.terminal.escape import printable

__all__ = ["demo"]

APP = "example_apps.fastapi_chat.app:app"


def demo(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.", min=1, max=65535)] = 8000,
) -> None:
    """Serve the FastAPI chat example (needs a checkout: run it from the repository root)."""
    try:
        import uvicorn
    except ImportError:
        raise fail("the demo needs uvicorn: pip install 'feedback-asgi[server,fastapi]'") from None
    root = Path.cwd()
    if not (root / "example_apps" / "fastapi_chat" / "app.py").is_file():
        raise fail("example_apps/fastapi_chat not found: run the demo from a checkout's root")
    sys.path.insert(0, str(root))
    shown = printable(host)
    typer.echo(f"Chat page: http://{shown}:{port}/   API docs: http://{shown}:{port}/docs")
    uvicorn.run(APP, host=host, port=port)
