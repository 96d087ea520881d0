# Every target makes its own virtual environment in .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: test lint typecheck pytest bench demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

## test: lint, type-check and run the whole test suite
test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check feedback_asgi tests bench

typecheck: $(STAMP)
	$(BIN)/mypy --strict feedback_asgi

pytest: $(STAMP)
	$(BIN)/pytest

$(BENCH_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	touch $@

## bench: run the benchmarks (not tests; BENCH=middleware runs one); figures go to bench/results/*.json
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench $(BENCH)

## demo: the FastAPI chat example on http://127.0.0.1:8000 (SQLite ./feedback.db)
demo: $(STAMP)
	@echo "Chat:      curl -si http://127.0.0.1:8000/chat -H 'Content-Type: application/json' -d '{\"message\": \"hello there\"}'"
	@echo "           (the answer's X-Trace-Id and X-Feedback-Token headers identify it)"
	@echo "Feedback:  curl -s http://127.0.0.1:8000/feedback -H 'Content-Type: application/json' \\"
	@echo "             -H \"X-Feedback-Token: <X-Feedback-Token>\" -d '{\"trace_id\": \"<X-Trace-Id>\", \"type\": \"thumbs\", \"value\": \"up\"}'"
	@echo "In one go: sh example_apps/fastapi_chat/try.sh    Page: http://127.0.0.1:8000/    API: http://127.0.0.1:8000/docs"
	$(BIN)/python -m uvicorn example_apps.fastapi_chat.app:app --host 127.0.0.1 --port 8000

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
