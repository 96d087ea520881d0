"""The soak driver: load without loss, faults, SIGTERM drain, figures (``make soak``).

``bench.soak.scenario.run(size, faults, drain=...)`` starts the FastAPI chat example under
uvicorn with several workers on a fresh PostgreSQL database and Redis prefix (both behind
TCP proxies it can cut), posts feedback on answers it obtained from the app, injects the
faults, and checks what was stored against what was acknowledged. ``tests/reliability``
runs it at a bounded size; ``python -m bench.soak`` at full size, printing the table.
"""
