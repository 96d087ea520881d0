"""``import feedback_asgi`` (and its storage package) must not pull in redis-py."""

from __future__ import annotations

import subprocess
import sys


def test_import_feedback_asgi_does_not_import_redis() -> None:
    code = (
        "import sys, feedback_asgi, feedback_asgi.storage, feedback_asgi.core.records;"
        "print(sorted(m for m in sys.modules if m == 'redis' or m.startswith('redis.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"


def test_the_redis_module_does_import_it() -> None:
    # The check above can fail: importing the Redis backends does load redis-py.
    code = "import sys, feedback_asgi.storage.redis; print('redis.asyncio' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "True"
