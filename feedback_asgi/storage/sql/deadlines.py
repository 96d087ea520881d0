"""What bounds every wait of the SQL store on a PostgreSQL or MariaDB/MySQL server.

With ``T = connect_timeout_seconds`` and ``S = statement_timeout_seconds``:

* connecting, handshake included: ``T`` (the driver's connect timeout, and the driver's
  whole ``connect()`` under ``asyncio.timeout``: asyncmy's own stops at the TCP connect);
* waiting for a free pooled connection: ``T`` (SQLAlchemy's ``pool_timeout``);
* each statement in the driver: ``S`` (asyncpg ``command_timeout``, asyncmy
  ``read_timeout``); the store bounds the feedback path (writes, health, the reads a post
  needs) at ``T`` itself, pool checkout and commit included;
* each statement on the server: ``S`` (PostgreSQL ``statement_timeout``, MariaDB
  ``max_statement_time``), and a lock wait ``T`` (PostgreSQL ``lock_timeout``, InnoDB
  ``innodb_lock_wait_timeout`` and ``lock_wait_timeout`` in whole seconds), so a write
  the client gave up on does not hold or wait for locks much longer.

A connection whose operation was cut short is invalidated by the store, and an invalidated
connection is closed at once: asyncpg's graceful close waits up to 2 s for a goodbye that
a silent server never sends.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from feedback_asgi.core.config import FeedbackConfig

__all__ = ["bound_engine", "server_engine_options"]


def _milliseconds(seconds: float) -> str:
    return str(max(1, round(seconds * 1000)))


def _mysql_session(config: FeedbackConfig) -> str:
    lock_wait = max(1, math.ceil(config.connect_timeout_seconds))
    # /*M! ... */ runs on MariaDB only: MySQL has no max_statement_time (and ignores it)
    return (
        f"SET SESSION innodb_lock_wait_timeout = {lock_wait}, lock_wait_timeout = {lock_wait}"
        f" /*M!, max_statement_time = {config.statement_timeout_seconds:g} */"
    )


def server_engine_options(backend: str, config: FeedbackConfig) -> dict[str, Any]:
    """``create_async_engine`` options for a PostgreSQL or MariaDB/MySQL ``backend``."""
    timeout = config.connect_timeout_seconds
    statement = config.statement_timeout_seconds
    options: dict[str, Any] = {"pool_pre_ping": True, "pool_timeout": timeout}
    if backend == "postgresql":
        options["connect_args"] = {
            "timeout": timeout,
            "command_timeout": statement,
            "server_settings": {
                "statement_timeout": _milliseconds(statement),
                "lock_timeout": _milliseconds(timeout),
            },
        }
    elif backend in ("mysql", "mariadb"):
        options["connect_args"] = {
            "connect_timeout": timeout,
            "read_timeout": statement,
            "init_command": _mysql_session(config),
        }
        options["pool_recycle"] = 3600
    return options


def bound_engine(engine: AsyncEngine, timeout: float) -> None:
    """Bound connecting to ``timeout`` seconds; close invalidated connections at once."""
    _bound_connect_time(engine, timeout)
    event.listen(engine.sync_engine.pool, "invalidate", _close_at_once)


def _bound_connect_time(engine: AsyncEngine, timeout: float) -> None:
    """Make each new connection give up after ``timeout`` seconds, handshake included.

    Drivers bound only part of it themselves (asyncmy's ``connect_timeout`` stops at the
    TCP connect, so a server that accepts and stays silent would hang us forever).
    """
    dialect = engine.dialect
    dbapi = dialect.loaded_dbapi
    driver = getattr(getattr(dbapi, dialect.driver, None), "connect", None)
    if driver is None:
        return
    driver_connect = driver

    async def bounded(*args: Any, **kwargs: Any) -> Any:
        async with asyncio.timeout(timeout):
            return await driver_connect(*args, **kwargs)

    @event.listens_for(engine.sync_engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        return dbapi.connect(*cargs, async_creator_fn=bounded, **cparams)


def _close_at_once(dbapi_connection: Any, _record: Any, _exception: Any) -> None:
    """Drop an invalidated connection's socket before SQLAlchemy's graceful close runs."""
    driver = getattr(dbapi_connection, "driver_connection", None)
    terminate = getattr(driver, "terminate", None)  # asyncpg: abort, no goodbye
    if terminate is not None:
        terminate()
    elif driver is not None and hasattr(driver, "ensure_closed"):  # asyncmy: close() is sync
        driver.close()
