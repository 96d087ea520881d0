# Every target makes its own virtual environment in .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench
# the browser tests drive Debian's Chromium (never `playwright install`)
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: test test-fast lint typecheck pytest bench soak demo demo-starlette demo-django clean peer-suites

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

## test: lint, type-check and run the whole test suite
test: lint typecheck pytest

## test-fast: the tests that need no service and no browser (the rest skip), for a quick loop
test-fast: $(STAMP)
	FEEDBACK_TESTS_WITHOUT_SERVICES=1 $(BIN)/pytest -q -m "not browser and not postgres and not mariadb and not redis and not slow"

lint: $(STAMP)
	$(BIN)/ruff check feedback_asgi tests bench peer_suites

typecheck: $(STAMP)
	$(BIN)/mypy --strict feedback_asgi peer_suites --exclude 'peer_suites/vendor/'

pytest: $(STAMP) $(CHROMIUM)
	$(BIN)/pytest

$(CHROMIUM):
	$(SUDO) apt-get -o DPkg::Lock::Timeout=300 update
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get -o DPkg::Lock::Timeout=300 install -y chromium

$(BENCH_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	touch $@

## bench: run the benchmarks (not tests; BENCH=middleware runs one); figures go to bench/results/*.json
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench $(BENCH)

## soak: the reliability scenarios at full size (4 workers, 50,000 posts, faults, more schemathesis
## examples; not in CI; bounded: 15 + 40 min); figures to bench/results/soak.json
soak: $(STAMP)
	FEEDBACK_SOAK_EXAMPLES=500 timeout 900 $(BIN)/pytest -q -p no:randomly tests/reliability/test_schema.py
	timeout 2400 $(BIN)/python -m bench.soak $(POSTS)

## demo: the FastAPI chat example on http://127.0.0.1:8000 (SQLite ./feedback.db)
demo: $(STAMP)
	@echo "Chat:      curl -si http://127.0.0.1:8000/chat -H 'Content-Type: application/json' -d '{\"message\": \"hello there\"}'"
	@echo "           (the answer's X-Trace-Id and X-Feedback-Token headers identify it)"
	@echo "Feedback:  curl -s http://127.0.0.1:8000/feedback -H 'Content-Type: application/json' \\"
	@echo "             -H \"X-Feedback-Token: <X-Feedback-Token>\" -d '{\"trace_id\": \"<X-Trace-Id>\", \"type\": \"thumbs\", \"value\": \"up\"}'"
	@echo "In one go: sh example_apps/fastapi_chat/try.sh    Page: http://127.0.0.1:8000/    API: http://127.0.0.1:8000/docs"
	$(BIN)/python -m uvicorn example_apps.fastapi_chat.app:app --host 127.0.0.1 --port 8000

## demo-starlette: the chat page on Starlette with sessions, http://127.0.0.1:8001 (SQLite ./feedback.db)
demo-starlette: $(STAMP)
	@echo "Page: http://127.0.0.1:8001/  (answers stream in; the widget shows thumbs, stars and a correction box)"
	$(BIN)/python -m uvicorn example_apps.starlette_app.app:app --host 127.0.0.1 --port 8001

## demo-django: the Django site on http://127.0.0.1:8002 (SQLite ./django_site.sqlite3), sign in as demo / demo-password
demo-django: $(STAMP)
	$(BIN)/python example_apps/django_site/manage.py migrate -v0
	@DJANGO_SUPERUSER_PASSWORD=demo-password $(BIN)/python example_apps/django_site/manage.py \
		createsuperuser --noinput --username demo --email demo@example.invalid 2>/dev/null \
		&& echo "Created the staff user demo / demo-password" || true
	@echo "Page: http://127.0.0.1:8002/  (sign in as demo / demo-password)   Admin: http://127.0.0.1:8002/admin/"
	$(BIN)/python -m uvicorn example_apps.django_site.asgi:application --host 127.0.0.1 --port 8002

## peer-suites: run the own test suites of Starlette, FastAPI, Django REST framework and
## django-cors-headers without and with our middleware (cached in .peer/; peer_suites/README.md)
peer-suites:
	$(PYTHON) peer_suites/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
