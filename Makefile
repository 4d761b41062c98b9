# Recourse: `make run` for the demo, `make test` for the suite. Needs only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TEST_PG ?= postgresql://postgres@127.0.0.1:5432/recourse_test
TEST_REDIS ?= redis://127.0.0.1:6379/15

.PHONY: run test test-sqlite test-postgres lint worker clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet -c constraints.txt -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# The demo: SQLite under instance/, jobs in-process, plain HTTP on 127.0.0.1.
run: $(VENV)/.installed
	$(BIN)/flask --app wsgi db upgrade
	$(BIN)/flask --app wsgi demo seed
	@echo ""
	@echo "Recourse is starting on http://127.0.0.1:5000  (debtor portal: http://127.0.0.1:5000/portal/login)"
	SESSION_COOKIE_SECURE=false $(BIN)/flask --app wsgi run --host 127.0.0.1 --port 5000

# The whole suite on SQLite, then on PostgreSQL + Redis when they answer (required with CI=true).
test: $(VENV)/.installed-dev
	@echo "== tests on SQLite, jobs in-process =="
	$(BIN)/python -m pytest
	@if $(BIN)/python -m tests.services "$(TEST_PG)" "$(TEST_REDIS)"; then \
		echo "== tests on PostgreSQL ($(TEST_PG)) + Redis ($(TEST_REDIS)) =="; \
		TEST_DATABASE_URL="$(TEST_PG)" TEST_REDIS_URL="$(TEST_REDIS)" $(BIN)/python -m pytest; \
	elif [ "$${CI:-}" = "true" ]; then \
		echo "CI=true: PostgreSQL and Redis are required, and did not answer." >&2; exit 1; \
	else \
		echo "== PostgreSQL + Redis run SKIPPED: they did not answer at $(TEST_PG) and $(TEST_REDIS) =="; \
	fi

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

worker: $(VENV)/.installed
	$(BIN)/flask --app wsgi worker

clean:
	rm -rf $(VENV) instance
