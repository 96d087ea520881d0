"""Real services for tests: a private PostgreSQL/MariaDB database and a Redis key prefix.

A service that is not running makes its tests skip with the reason, except under
``CI=true``, where they fail loudly instead.
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest

PG_HOST, PG_PORT = "127.0.0.1", 5432
MYSQL_HOST, MYSQL_PORT = "127.0.0.1", 3306
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
WITHOUT_SERVICES = os.environ.get("FEEDBACK_TESTS_WITHOUT_SERVICES", "") == "1"
"""Set by ``make test-fast``: every test that needs a service or the browser skips."""


def reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether a TCP connection to ``host:port`` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require(service: str, host: str, port: int) -> None:
    """Skip (or, under CI, fail) when ``service`` is not listening."""
    if WITHOUT_SERVICES:
        pytest.skip(f"{service}: make test-fast runs without services")
    if reachable(host, port):
        return
    message = f"{service} is not running on {host}:{port}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: service tests must run)", pytrace=False)
    pytest.skip(message)


def unique_name(prefix: str) -> str:
    """A name no other test run uses."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


async def create_postgres_database() -> tuple[str, str]:
    """Create a fresh database; returns ``(name, sqlalchemy_url)``."""
    import asyncpg

    require("PostgreSQL", PG_HOST, PG_PORT)
    name = unique_name("fa_test")
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name, f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{name}"


async def drop_postgres_database(name: str) -> None:
    """Drop a database made by :func:`create_postgres_database`."""
    import asyncpg

    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def create_mysql_database() -> tuple[str, str]:
    """Create a fresh MariaDB database; returns ``(name, sqlalchemy_url)``."""
    import asyncmy

    require("MariaDB", MYSQL_HOST, MYSQL_PORT)
    name = unique_name("fa_test")
    conn = await asyncmy.connect(host=MYSQL_HOST, port=MYSQL_PORT, user="root", password="")
    try:
        async with conn.cursor() as cur:
            await cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    finally:
        conn.close()
    return name, f"mysql+asyncmy://root@{MYSQL_HOST}:{MYSQL_PORT}/{name}?charset=utf8mb4"


async def drop_mysql_database(name: str) -> None:
    """Drop a database made by :func:`create_mysql_database`."""
    import asyncmy

    conn = await asyncmy.connect(host=MYSQL_HOST, port=MYSQL_PORT, user="root", password="")
    try:
        async with conn.cursor() as cur:
            await cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        conn.close()


def redis_url() -> str:
    """The test Redis URL (after checking the server is up)."""
    require("Redis", REDIS_HOST, REDIS_PORT)
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


async def delete_redis_prefix(prefix: str) -> None:
    """Delete every key under ``prefix``."""
    import redis.asyncio as redis

    client = redis.Redis.from_url(f"redis://{REDIS_HOST}:{REDIS_PORT}/0")
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def database_url_for(request: pytest.FixtureRequest, tmp_path: Path | None = None) -> str:
    """The feedback database of the fixture's backend (``request.param``): ``memory``, ``sqlite``
    (a file in ``tmp_path``), or a private ``postgres`` / ``mysql`` (MariaDB) database."""
    backend = request.param
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        assert tmp_path is not None, "a SQLite database needs tmp_path"
        return f"sqlite+aiosqlite:///{tmp_path / 'feedback.db'}"
    url: str = request.getfixturevalue(f"{backend}_url")
    return url
