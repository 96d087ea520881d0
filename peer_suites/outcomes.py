"""pytest plugin: write every test's outcome to the JSON file named by ``PEER_OUTCOMES``.

Loaded with ``-p peer_suites.outcomes`` in every run. One entry per test node id:
``outcome`` (``passed``, ``failed``, ``error``, ``skipped``, ``xfailed``, ``xpassed``) and, for
failures and errors, ``message`` (the failing assertion or exception line) and ``detail`` (the
end of the traceback). Collection errors are entries too, under the module's node id. Under
pytest-xdist only the controller writes (it receives every worker's reports).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

DETAIL_CHARS = 3000

_results: dict[str, dict[str, Any]] = {}


def _message(report: pytest.TestReport | pytest.CollectReport) -> tuple[str, str]:
    longrepr: Any = report.longrepr
    text = report.longreprtext or ""
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        message = str(crash.message)
    elif isinstance(longrepr, tuple) and len(longrepr) == 3:
        message = str(longrepr[2])
    else:
        lines = [line for line in text.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("E ")]
        message = (errors or lines or [""])[-1]
    return message.strip()[:500], text[-DETAIL_CHARS:]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Fold the setup, call and teardown reports of a test into one outcome."""
    entry = _results.setdefault(report.nodeid, {"outcome": "passed"})
    if entry["outcome"] in ("failed", "error"):
        return  # the first failure of a test is the one that counts
    if report.failed:
        entry["outcome"] = "failed" if report.when == "call" else "error"
        if hasattr(report, "wasxfail"):  # strict xfail that passed
            entry["outcome"] = "xpassed"
        entry["phase"] = report.when
        entry["message"], entry["detail"] = _message(report)
    elif report.skipped:
        entry["outcome"] = "xfailed" if hasattr(report, "wasxfail") else "skipped"
    elif report.when == "call" and hasattr(report, "wasxfail"):
        entry["outcome"] = "xpassed"


def pytest_collectreport(report: pytest.CollectReport) -> None:
    """A module (or class) that fails to import is one failed entry."""
    if report.failed:
        message, detail = _message(report)
        _results[report.nodeid or "<collection>"] = {
            "outcome": "error", "phase": "collect", "message": message, "detail": detail,
        }


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write the file (the xdist controller, or a plain run)."""
    if hasattr(session.config, "workerinput"):
        return
    target = os.environ.get("PEER_OUTCOMES")
    if not target:
        return
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"exitstatus": int(exitstatus), "tests": _results}
    path.write_text(json.dumps(data, indent=1, sort_keys=True))
