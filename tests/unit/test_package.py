"""The package's public surface and its import cost."""

from __future__ import annotations

import subprocess
import sys

import feedback_asgi

HEAVY = ("sqlalchemy", "aiosqlite", "asyncpg", "asyncmy", "redis", "starlette", "fastapi",
         "django", "typer", "rich", "alembic", "uvicorn")


def test_every_exported_name_exists() -> None:
    missing = [name for name in feedback_asgi.__all__ if not hasattr(feedback_asgi, name)]
    assert missing == []


def test_importing_the_package_loads_no_framework_driver_or_redis() -> None:
    code = (
        "import sys, feedback_asgi\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""


def test_py_typed_marker_ships_with_the_package() -> None:
    from importlib.resources import files

    assert files("feedback_asgi").joinpath("py.typed").is_file()
