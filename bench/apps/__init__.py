"""ASGI apps the HTTP benchmarks serve with uvicorn; ``BENCH_VARIANT`` picks the variant."""
