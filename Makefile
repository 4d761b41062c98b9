# Recourse: `make run` for the demo, `make test` for the suite. Needs only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TEST_PG ?= postgresql://postgres@127.0.0.1:5432/recourse_test
TEST_REDIS ?= redis://127.0.0.1:6379/15

.PHONY: run test test-faults test-sqlite test-postgres lint worker clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet -c constraints.txt -e .
	touch $@

$(VENV)/.installed-demo: $(VENV)/.installed
	$(BIN)/pip install --quiet -c constraints.txt -e '.[demo]'
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# The demo: SQLite under instance/, jobs in-process, plain HTTP on 127.0.0.1, and a fake
# Stripe (localstripe) on 127.0.0.1:8420 that the portal pays through and that sends webhooks.
DEMO_STRIPE := STRIPE_API_BASE=http://127.0.0.1:8420 STRIPE_SECRET_KEY=sk_test_recourse_demo \
	STRIPE_PUBLISHABLE_KEY=pk_test_recourse_demo STRIPE_WEBHOOK_SECRET=whsec_recourse_demo

run: $(VENV)/.installed-demo
	$(BIN)/flask --app wsgi db upgrade
	$(BIN)/flask --app wsgi demo seed
	@echo ""
	@echo "Recourse is starting on http://127.0.0.1:5000  (debtor portal: http://127.0.0.1:5000/portal/login)"
	@echo "Fake Stripe on http://127.0.0.1:8420: pay with card 4242 4242 4242 4242, any future date, any CVC."
	$(BIN)/python -m demo.fake_stripe --port 8420 --webhook http://127.0.0.1:5000/stripe/webhook & \
	STRIPE_PID=$$!; trap 'kill $$STRIPE_PID 2>/dev/null' EXIT INT TERM; \
	$(DEMO_STRIPE) SESSION_COOKIE_SECURE=false $(BIN)/flask --app wsgi run --host 127.0.0.1 --port 5000

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

# The fault suite alone (tests/faults; `make test` runs it too): the app on gunicorn, with
# PostgreSQL backends killed, Redis and the fake Stripe stopped, a worker killed mid-job.
test-faults: $(VENV)/.installed-dev
	TEST_DATABASE_URL="$(TEST_PG)" TEST_REDIS_URL="$(TEST_REDIS)" $(BIN)/python -m pytest tests/faults

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

worker: $(VENV)/.installed
	$(BIN)/flask --app wsgi worker

clean:
	rm -rf $(VENV) instance
