# Haven — the two commands: `make demo` and `make test`. See README.md.

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: demo test bench lint format venv clean

# Create or update the virtualenv whenever the pins change.
$(STAMP): requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found (set PYTHON=...)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

# Embedded by default (SQLite + file-system broker under var/); DATABASE_URL / REDIS_URL
# in the environment switch to PostgreSQL / Redis.
demo: venv
	DEBUG=$${DEBUG:-true} $(PY) manage.py run_demo

test: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DEBUG=true $(VENV)/bin/mypy
	DEBUG=true $(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# Not a test: seeds 2.5 GW datasets on the local PostgreSQL (BENCH_DATABASE_URL) and prints
# figures and ratios; record them in docs/performance.md. BENCH_ARGS=--quick for a short run.
bench: venv
	DEBUG=true $(PY) manage.py bench $(BENCH_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DEBUG=true $(VENV)/bin/mypy

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache test-artifacts
