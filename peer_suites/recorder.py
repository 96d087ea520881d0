"""pytest plugin: record every response a Django suite's requests get, to compare two runs.

Loaded with ``-p peer_suites.recorder``; writes the JSON file named by ``PEER_RECORD``.
Every handler that runs the middleware chain (the test ``Client``/``APIClient`` through
``ClientHandler``, DRF's ``RequestsClient`` through ``WSGIHandler``, the ``AsyncClient``)
goes through ``BaseHandler.get_response`` or ``get_response_async``: those are wrapped, so
the record is the response as the outermost middleware returned it. Per test node id and
request index (``nodeid#0``, ``nodeid#1``...): method and path, status, all headers
(sorted), cookies (name, value, attributes), the body (its SHA-256 and its first bytes;
streaming bodies are not read, they are marked), and the SQL statements run on each
database connection of the request's thread while the request was handled (statement
text and parameters, through ``connection.execute_wrapper``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

BODY_PREVIEW = 300

_records: dict[str, dict[str, Any]] = {}
_counts: dict[str, int] = {}
_current = ["<outside tests>"]


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("latin-1")
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


@contextlib.contextmanager
def _queries(log: list[dict[str, Any]]) -> Iterator[None]:
    from django.db import connections

    def wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool,
                context: dict[str, Any]) -> Any:
        connection = context.get("connection")
        log.append({"db": getattr(connection, "alias", "?"), "sql": sql,
                    "params": _jsonable(params), "many": many})
        return execute(sql, params, many, context)

    with contextlib.ExitStack() as stack:
        for connection in connections.all(initialized_only=True):
            stack.enter_context(connection.execute_wrapper(wrapper))
        yield


def _describe(request: Any, response: Any, queries: list[dict[str, Any]]) -> dict[str, Any]:
    record: dict[str, Any] = {
        "method": getattr(request, "method", None),
        "path": getattr(request, "path", None),
        "status": getattr(response, "status_code", None),
        "headers": sorted([str(name), str(value)] for name, value in response.items()),
        "cookies": {
            name: {"value": morsel.value,
                   "attributes": {key: str(value) for key, value in morsel.items() if value}}
            for name, morsel in sorted(response.cookies.items())
        },
        "queries": queries,
    }
    if getattr(response, "streaming", False):
        record["body"] = {"streaming": True}
    else:
        content = bytes(response.content)
        record["body"] = {
            "sha256": hashlib.sha256(content).hexdigest(),
            "length": len(content),
            "preview": content[:BODY_PREVIEW].decode("utf-8", "replace"),
        }
    return record


def _store(request: Any, response: Any, queries: list[dict[str, Any]]) -> None:
    nodeid = _current[0]
    index = _counts.get(nodeid, 0)
    _counts[nodeid] = index + 1
    try:
        record = _describe(request, response, queries)
    except Exception as exc:  # never let the recorder change a test's outcome
        record = {"recorder_error": f"{type(exc).__name__}: {exc}"}
    _records[f"{nodeid}#{index}"] = record


def install() -> None:
    """Wrap ``BaseHandler.get_response`` and ``get_response_async``."""
    from django.core.handlers.base import BaseHandler

    original = BaseHandler.get_response
    original_async = BaseHandler.get_response_async

    def get_response(self: BaseHandler, request: Any) -> Any:
        log: list[dict[str, Any]] = []
        with _queries(log):
            response = original(self, request)
        _store(request, response, log)
        return response

    async def get_response_async(self: BaseHandler, request: Any) -> Any:
        log: list[dict[str, Any]] = []
        with _queries(log):
            response = await original_async(self, request)
        _store(request, response, log)
        return response

    BaseHandler.get_response = get_response  # type: ignore[method-assign]
    BaseHandler.get_response_async = get_response_async  # type: ignore[method-assign]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[
        None, object, object]:
    """Name the records of a test's requests (setup and teardown included) after it."""
    _current[0] = item.nodeid
    try:
        return (yield)
    finally:
        _current[0] = "<outside tests>"


def pytest_configure(config: pytest.Config) -> None:
    """Install the wrappers once Django's settings are known (after the suite's conftest)."""
    install()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write the records."""
    target = os.environ.get("PEER_RECORD")
    if not target or hasattr(session.config, "workerinput"):
        return
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_records, indent=0, sort_keys=True))
