"""Django for the tests in this directory only: the rest of the suite never configures it.

pytest-django reads ``DJANGO_SETTINGS_MODULE`` lazily, so setting it when this directory is
collected is enough; running other directories alone never imports Django.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django.settings")

import django
import pytest

django.setup()

from feedback_asgi.integrations.django.conf import reset_kit  # noqa: E402
from tests import services  # noqa: E402


@pytest.fixture(autouse=True)
def fresh_kit() -> Iterator[None]:
    """Every test gets a kit built from its own settings (fresh in-memory exchanges).

    Afterwards the connections the async ORM opened in asgiref's executor thread are
    closed, so the test databases can be dropped at the end.
    """
    reset_kit()
    yield
    reset_kit()
    from asgiref.sync import sync_to_async
    from django.db import connections

    asyncio.run(sync_to_async(connections.close_all, thread_sensitive=True)())


@pytest.fixture
def postgres_alias() -> str:
    """The alias of the PostgreSQL test database (skips, or fails under CI, without it)."""
    from django.conf import settings

    if "postgres" not in settings.DATABASES:
        services.require("PostgreSQL", services.PG_HOST, services.PG_PORT)
    return "postgres"
