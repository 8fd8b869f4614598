# Loa: `make run` (install, migrate, demo, web + worker) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
HOST ?= 127.0.0.1

.PHONY: install run web web-prod webhooks-prod worker scheduler status test lint format bench messages clean

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $@

install: $(VENV)/.installed

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py compilemessages --ignore=.venv >/dev/null 2>&1 || true
	$(PY) manage.py loa_demo --quiet
	@$(PY) manage.py loa_serve --host $(HOST) --port $(PORT)

web: install
	$(PY) manage.py runserver $(HOST):$(PORT)

worker: install
	$(PY) manage.py qcluster

# Production roles (docs/OPERATIONS.md; the Procfile says the same): gunicorn behind a proxy,
# qcluster workers, and optionally one dedicated scheduler (then run workers with Q_SCHEDULER=false).
web-prod: install
	$(PY) manage.py collectstatic --noinput -v 0
	$(VENV)/bin/gunicorn -c config/gunicorn.conf.py config.wsgi:application

# Provider callbacks on their own server (docs/OPERATIONS.md, "The webhooks role").
webhooks-prod: install
	$(VENV)/bin/granian --interface wsgi --no-ws --host $(HOST) --port $${WEBHOOKS_PORT:-8001} \
		--workers $${WEBHOOKS_WORKERS:-2} --blocking-threads $${WEBHOOKS_THREADS:-16} config.wsgi:application

scheduler: install
	Q_WORKERS=1 Q_SCHEDULER=true $(PY) manage.py qcluster

status: install
	$(PY) manage.py loa_status

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PY) bench/run_all.py

messages: install
	$(PY) manage.py makemessages -l vi --ignore=.venv --ignore=bench --ignore=tests --ignore=tmp
	$(PY) manage.py compilemessages --ignore=.venv

clean:
	rm -rf $(VENV) loa.sqlite3* media staticfiles .pytest_cache
