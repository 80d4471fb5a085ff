# The two set-up commands (README): `make demo` and `make test`.
# Both create or refresh .venv: torch 2.13.0 (CPU) first, then zoo and its dependencies.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.zoo-installed

.PHONY: demo test suite bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

test: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest

suite: $(STAMP)
	PYTHON=$(BIN)/python bash scripts/suite-deps.sh
	$(BIN)/zoo data suite build --size small --out .zoo/suite/small

clean:
	rm -rf .zoo build *.egg-info
