"""Fixtures shared by every test module: real services with private names, cleaned up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests import services

_BROWSER_TESTS = Path(__file__).parent / "browser"
_SERVICE_FIXTURES = {"postgres_url": "postgres", "mysql_url": "mariadb",
                     "redis_prefix": "redis", "redis_url": "redis"}
_SERVICE_PARAMS = {"postgres": "postgres", "mysql": "mariadb", "mariadb": "mariadb",
                   "redis": "redis"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with the kinds it is (``-m "not browser"`` and the like select them):
    ``browser`` below tests/browser, a service marker for a service fixture or a backend
    parameter naming one. A test that reaches a service another way carries the marker
    itself, and ``make test-fast`` skips it in any case (``services.WITHOUT_SERVICES``)."""
    for item in items:
        kinds: set[str] = set()
        if _BROWSER_TESTS in Path(str(item.path)).parents:
            kinds.add("browser")
        kinds.update(_SERVICE_FIXTURES[name] for name in getattr(item, "fixturenames", ())
                     if name in _SERVICE_FIXTURES)
        callspec = getattr(item, "callspec", None)
        if callspec is not None:
            kinds.update(_SERVICE_PARAMS[value] for value in callspec.params.values()
                         if isinstance(value, str) and value in _SERVICE_PARAMS)
        for kind in sorted(kinds - {mark.name for mark in item.iter_markers()}):
            item.add_marker(kind)


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A SQLAlchemy URL of a fresh PostgreSQL database, dropped afterwards."""
    name, url = await services.create_postgres_database()
    try:
        yield url
    finally:
        await services.drop_postgres_database(name)


@pytest.fixture
async def mysql_url() -> AsyncIterator[str]:
    """A SQLAlchemy URL of a fresh MariaDB database, dropped afterwards."""
    name, url = await services.create_mysql_database()
    try:
        yield url
    finally:
        await services.drop_mysql_database(name)


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A Redis key prefix of this test's own; its keys are deleted afterwards."""
    services.redis_url()
    prefix = services.unique_name("fa_test") + ":"
    try:
        yield prefix
    finally:
        await services.delete_redis_prefix(prefix)


@pytest.fixture
def redis_url() -> str:
    """The test Redis server's URL."""
    return services.redis_url()
