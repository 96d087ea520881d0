"""Fixtures shared by every test module: real services with private names, cleaned up."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests import services


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
