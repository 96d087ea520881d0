"""Run the benchmarks: ``python -m bench [name ...]`` (names without ``bench_``/``.py``).

Each ``bench/bench_<name>.py`` has ``main() -> dict``: it prints its table and returns
its figures, which are written to ``bench/results/<name>.json``.
"""

from __future__ import annotations

import importlib
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
RESULTS = HERE / "results"


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    RESULTS.mkdir(exist_ok=True)
    for name in names:
        module = importlib.import_module(f"bench.bench_{name}")
        print(f"\n=== bench {name} ===", flush=True)
        started = time.time()
        figures = module.main()
        record = {
            "bench": name,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seconds": round(time.time() - started, 1),
            "python": platform.python_version(),
            "figures": figures,
        }
        out = RESULTS / f"{name}.json"
        out.write_text(json.dumps(record, indent=2) + "\n")
        print(f"--> {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
