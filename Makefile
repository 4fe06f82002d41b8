# `make run` and `make test` set up everything they need on a machine with Python 3.11+.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
RUN_PORT ?= 8000
SANDBOX_PORT ?= 8090
PYTEST := $(PY) -m pytest
SERVICES_ENV := DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test} \
	CELERY_BROKER_URL=$${CELERY_BROKER_URL:-redis://127.0.0.1:6379/15}

.PHONY: install run test test-services test-browser fuzz bench clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $@

.env:
	cp .env.example .env

run: export LIVECHAT_API_URL = http://127.0.0.1:$(SANDBOX_PORT)
run: export LIVECHAT_ACCOUNTS_URL = http://127.0.0.1:$(SANDBOX_PORT)
run: export PUBLIC_BASE_URL = http://127.0.0.1:$(RUN_PORT)
run: $(STAMP) .env
	$(PY) manage.py migrate --noinput
	@trap 'kill 0' EXIT INT TERM; \
	$(PY) manage.py livechat_sandbox --port $(SANDBOX_PORT) & \
	$(PY) manage.py wait_for_url http://127.0.0.1:$(SANDBOX_PORT)/agent/ && \
	$(PY) manage.py seed_demo --register-webhooks && \
	echo "LiveChat sandbox agent page: http://127.0.0.1:$(SANDBOX_PORT)/agent/" && \
	HITL_EMBEDDED_SCHEDULER=1 $(PY) manage.py runserver --noreload 127.0.0.1:$(RUN_PORT)

test: $(STAMP)
	$(PYTEST) -q -m "not services and not browser"

test-services: $(STAMP)
	$(SERVICES_ENV) $(PYTEST) -q -m "not browser"

test-browser: $(STAMP)
	bash .ci/install-browser.sh
	$(PYTEST) -q -m browser

# Ten times the fuzzing that CI does (schemathesis on the API, hypothesis on webhooks).
fuzz: $(STAMP)
	FUZZ_SCALE=10 $(PYTEST) -q tests/fuzz

# Not a test: measures the console beside its stack's floor and prints JSON + a table
# (docs/performance.md). Needs PostgreSQL and Redis on 127.0.0.1; installs wrk from Debian.
bench: $(STAMP)
	bash bench/install-tools.sh
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3 .pytest_cache
