"""Run one export in this process and print its RSS growth: ``python -m tests.export.rss_child``.

Arguments: database URL, export kind, ``fast`` or ``generic``, since, until (ISO 8601).
Prints one JSON line: written, bytes, rss_before_kb, rss_peak_kb (Linux: /proc/self/status;
ru_maxrss would include the parent's peak, which a fork passes on).
"""

from __future__ import annotations

import asyncio
import json
import sys

from feedback_asgi.export import ExportOptions, ExportReport, export_chunks
from feedback_asgi.export.options import parse_moment
from feedback_asgi.storage.sql.store import SqlFeedbackStore


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # start the peak (VmHWM) over from the current RSS


async def _run(url: str, kind: str, fast: bool, since: str, until: str) -> dict[str, int]:
    store = SqlFeedbackStore(url)
    await store.ping()
    await store.read_engine()
    before = _status_kb("VmRSS")
    _reset_peak()
    options = ExportOptions(kind=kind, since=parse_moment(since),  # type: ignore[arg-type]
                            until=parse_moment(until))
    report = ExportReport()
    size = 0
    async for chunk in export_chunks(store, options, report, fast_path=fast):
        size += len(chunk)
    peak = _status_kb("VmHWM")
    await store.close()
    return {"written": report.written, "bytes": size, "rss_before_kb": before,
            "rss_peak_kb": peak}


if __name__ == "__main__":
    url, kind, mode, since, until = sys.argv[1:6]
    print(json.dumps(asyncio.run(_run(url, kind, mode == "fast", since, until))))
