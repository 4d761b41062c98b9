# Recourse: `make run` for the demo, `make test` for the suite. Needs only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TEST_PG ?= postgresql://postgres@127.0.0.1:5432/recourse_test
TEST_REDIS ?= redis://127.0.0.1:6379/15
# The demo's ports: `make run PORT=5001 STRIPE_PORT=8421` (port 5000 is taken on macOS).
PORT ?= 5000
STRIPE_PORT ?= 8420

.PHONY: run test test-smoke test-faults test-sqlite test-postgres lint worker clean

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
# Stripe (localstripe) on 127.0.0.1:$(STRIPE_PORT) that the portal pays through and that sends webhooks.
# Staff sign in with a password alone (MFA_REQUIRED=false): the demo logins are shared.
DEMO_STRIPE := STRIPE_API_BASE=http://127.0.0.1:$(STRIPE_PORT) STRIPE_SECRET_KEY=sk_test_recourse_demo \
	STRIPE_PUBLISHABLE_KEY=pk_test_recourse_demo STRIPE_WEBHOOK_SECRET=whsec_recourse_demo

run: $(VENV)/.installed-demo
	$(BIN)/flask --app wsgi db upgrade
	$(BIN)/flask --app wsgi demo seed
	@echo ""
	@echo "Recourse is starting on http://127.0.0.1:$(PORT)  (debtor portal: http://127.0.0.1:$(PORT)/portal/login)"
	@echo "Fake Stripe on http://127.0.0.1:$(STRIPE_PORT): pay with card 4242 4242 4242 4242, any future date, any CVC."
	$(BIN)/python -m demo.fake_stripe --port $(STRIPE_PORT) --webhook http://127.0.0.1:$(PORT)/stripe/webhook & \
	STRIPE_PID=$$!; trap 'kill $$STRIPE_PID 2>/dev/null' EXIT INT TERM; \
	$(DEMO_STRIPE) SESSION_COOKIE_SECURE=false MFA_REQUIRED=false PORTAL_URL=http://127.0.0.1:$(PORT)/portal/login \
	$(BIN)/flask --app wsgi run --host 127.0.0.1 --port $(PORT)

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

# The production layout end to end (docs/deploy.md): nginx with deploy/nginx/recourse.conf and a
# self-signed certificate in front of gunicorn (deploy/gunicorn.conf.py), a worker and the
# scheduler, RECOURSE_ENV=production, on PostgreSQL + Redis; signs in over HTTPS. Needs nginx
# (`apt-get install nginx`); with CI=true a missing nginx, PostgreSQL or Redis fails it.
test-smoke: $(VENV)/.installed-dev
	RECOURSE_SMOKE=1 TEST_DATABASE_URL="$(TEST_PG)" TEST_REDIS_URL="$(TEST_REDIS)" \
		$(BIN)/python -m pytest tests/deploy

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
