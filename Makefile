# The README's commands. `make demo` and `make test` install everything into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test test-cluster lint bench clean

install: $(VENV)/.installed

# torch is pinned and installed first, so that nothing pulls a CUDA build of several GB.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[train,dev]'
	touch $@

demo: install
	$(BIN)/lensflow demo

test: install
	$(BIN)/pytest

# Only the SLURM tests (tests/cluster, also part of `make test`): a single-node SLURM started
# by the tests themselves, as root, from Debian's slurm-wlm and munge (.ci/run installs them).
test-cluster: install
	$(BIN)/pytest tests/cluster

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy lensflow
	$(BIN)/hadolint docker/Dockerfile.cpu docker/Dockerfile.gpu

bench: install
	$(BIN)/python -m benchmarks

clean:
	rm -rf demo .pytest_cache .mypy_cache .ruff_cache
