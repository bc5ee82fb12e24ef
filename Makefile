# runcast: `make serve` runs the server on an embedded SQLite store, `make test` runs every test.
# Both set up .venv from this project's own files first (idempotent).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install serve test bench-quick clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	touch $(STAMP)

serve: install
	$(BIN)/runcast serve

test: install
	$(BIN)/python -m pytest -q

bench-quick: install
	$(BIN)/python -m benchmarks.quick_throughput

clean:
	rm -rf $(VENV) runcast.db runcast.db-wal runcast.db-shm
