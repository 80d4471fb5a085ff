# The two set-up commands (README): `make demo` and `make test`.
# Both create or refresh .venv from the lock (requirements/lock.txt): torch 2.13.0 (CPU) first, then
# every pinned, hash-checked dependency (--no-deps: nothing is resolved afresh), then zoo itself,
# then the web face's browser assets (scripts/web-assets.sh: mermaid from web/package-lock.json).
# `make test` also installs Debian's chromium for the browser tests when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.zoo-installed
LOCK   := requirements/lock.txt
# -qq: pip's errors only (the machine's pip.conf names index folders that warn for most packages).
PIP    := pip -qq --disable-pip-version-check
TOOLS  := build/lock-tools
LATEST := build/latest-venv

.PHONY: demo test browser suite lock test-latest clean hub-conformance

$(STAMP): pyproject.toml $(LOCK) web/package-lock.json
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing $(VENV) from $(LOCK)"
	$(BIN)/$(PIP) install torch==2.13.0
	$(BIN)/$(PIP) install --require-hashes --no-deps -r $(LOCK)
	$(BIN)/$(PIP) install --no-deps --no-build-isolation -e .
	bash scripts/web-assets.sh
	@touch $(STAMP)

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

test: $(STAMP) browser
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest

# Debian's chromium and chromium-driver for tests/web (a no-op where /usr/bin/chromium exists),
# and the browser assets again (a copy, 0.1 s, when web/package-lock.json has not changed).
browser:
	@bash scripts/browser-deps.sh
	@bash scripts/web-assets.sh

suite: $(STAMP)
	PYTHON=$(BIN)/python bash scripts/suite-deps.sh
	$(BIN)/zoo data suite build --size small --out .zoo/suite/small

# Refresh the lock from pyproject.toml, keeping today's pins where they still fit;
# `make lock LOCK_FLAGS=--upgrade` takes the newest versions the bounds allow instead.
lock:
	@test -x $(TOOLS)/bin/pip-compile || \
	  ($(PYTHON) -m venv $(TOOLS) && $(TOOLS)/bin/$(PIP) install pip-tools==7.6.2)
	$(TOOLS)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	  --no-emit-index-url --no-emit-find-links --extra test $(LOCK_FLAGS) \
	  -c requirements/constraints.txt -o $(LOCK) pyproject.toml
	@echo "wrote $(LOCK); run make test before committing it"

# Not in CI: the suite on a fresh resolution (newest versions pyproject's bounds allow), in a
# throwaway venv, listing every version that differs from the lock, so an upgrade is measured.
test-latest:
	rm -rf $(LATEST) && $(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/$(PIP) install torch==2.13.0
	$(LATEST)/bin/$(PIP) install -e '.[test]'
	$(LATEST)/bin/python scripts/lock_drift.py $(LOCK)
	OMP_NUM_THREADS=1 $(LATEST)/bin/python -m pytest

clean:
	rm -rf .zoo build *.egg-info

# Not in CI: huggingface_hub's own tests (the sdist of the installed version) against `zoo hub serve`,
# each failure classed (scripts/hf_conformance_rules.py); reports under build/hf-conformance/.
# XET=0 runs them with HF_HUB_DISABLE_XET=1.
hub-conformance: $(STAMP)
	$(BIN)/python scripts/hf_conformance.py $(if $(filter 0,$(XET)),--no-xet,)
