# The two commands of the README: `make run` (the whole portal) and `make test` (the suite).
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PORTAL_PORT ?= 8000
REGISTRY_PORT ?= 5000
PORTAL_VAR_DIR ?= $(CURDIR)/var
HOKUSAI_REGISTRY_URL ?= http://127.0.0.1:$(REGISTRY_PORT)
export PORTAL_PORT REGISTRY_PORT PORTAL_VAR_DIR HOKUSAI_REGISTRY_URL
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: run production test lint

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.runtime-installed

run: $(VENV)/.runtime-installed
	$(PY) manage.py migrate --noinput
	exec $(PY) -m hokusai_portal.supervise development

# The production set on one host: needs PORTAL_ENV=production, DATABASE_URL, CELERY_BROKER_URL and the secrets.
production: $(VENV)/.runtime-installed
	PORTAL_ENV=production $(PY) manage.py migrate --noinput
	PORTAL_ENV=production $(PY) manage.py collectstatic --noinput -v 0
	PORTAL_ENV=production exec $(PY) -m hokusai_portal.supervise production

# Two test processes (pytest-xdist): each has its own database and broker (tests/conftest.py).
PYTEST_ARGS ?= -n 2

test: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/lint-imports
