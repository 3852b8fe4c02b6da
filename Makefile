# Everything runs from .venv, built from requirements-dev.lock: every package, transitive ones
# included, pinned with its hashes; pip refuses a file whose hash is not in the lock, and any
# source distribution (no setup.py runs at install time). Rebuilt whenever a lock changes. The
# pip of requirements-pip.lock goes in first: Python 3.11's own (23.2) refuses a hashed lock in
# which a package asks for another's extra (pip-audit needs CacheControl[filecache]).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# make lock: the locks from requirements-pip.txt, requirements.txt and requirements-dev.txt (the
# pins people write), for every platform and Python from 3.11 (--universal); versions already locked are kept.
# LOCK_FLAGS="--upgrade" takes the newest of everything, "--upgrade-package NAME" of one.
LOCK_FLAGS ?=
COMPILE = $(BIN)/uv pip compile --quiet --generate-hashes --universal --python-version 3.11 \
	--custom-compile-command "make lock" $(LOCK_FLAGS)

.PHONY: demo test lint format sandbox clean lock audit

$(STAMP): requirements-pip.lock requirements-dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes \
		--only-binary :all: -r requirements-pip.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes \
		--only-binary :all: -r requirements-dev.lock
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m sandbox.demo_cli

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

sandbox: $(STAMP)
	$(BIN)/python -m sandbox

# The runtime lock first: the development one is held to its versions (-c), so the checkout's
# .venv and the image (docs/k8s/Dockerfile) run the same packages.
lock: $(STAMP)
	$(COMPILE) requirements-pip.txt -o requirements-pip.lock
	$(COMPILE) requirements.txt -o requirements.lock
	$(COMPILE) requirements-dev.txt -c requirements.lock -o requirements-dev.lock

# Known vulnerabilities in the locked versions (the development lock holds the runtime one's).
audit: $(STAMP)
	$(BIN)/python .ci/audit.py requirements-dev.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
