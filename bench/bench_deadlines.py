"""Answer times while PostgreSQL, MariaDB or Redis accepts connections and never answers.

Runs ``tests/reliability/test_deadlines.py`` (a real uvicorn, storage behind a proxy that
goes silent, cold pool and warm pool, 64 concurrent posts with ``connect_timeout_seconds``
1.0) and returns the figures it measured: per outage the posts' median and max answer time
and statuses, the health check's time, the app's own route during the outage, and the time
to the first successful post once the server answers again. Needs the three services.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TESTS = "tests/reliability/test_deadlines.py"


def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "deadlines.json"
        env = {**os.environ, "FEEDBACK_DEADLINES_OUT": str(out), "CI": "true"}
        command = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:randomly", TESTS]
        subprocess.run(command, cwd=ROOT, env=env, check=True, timeout=300)
        figures: dict[str, Any] = json.loads(out.read_text())
    return {
        "command": "python -m bench deadlines",
        "connect_timeout_seconds": 1.0,
        "posts": 64,
        "outages": figures,
    }
