# runcast: `make serve` runs the server on an embedded SQLite store, `make test` runs every test.
# Both set up .venv from this project's own files first (idempotent); `make test` type-checks
# actors/, web/ and client/ (mypy, strict) before it runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install redis-server chromium serve test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	touch $(STAMP)

serve: install
	$(BIN)/runcast serve

# the Redis store's tests run against a real redis-server (7.0 or later), installed when missing
redis-server:
	@command -v redis-server >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }

# the browser tests (tests/web/test_browser_client.py) drive Debian's chromium through Playwright
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

test: install redis-server chromium
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest -q

# a short run of every scenario (a few minutes); the full-size commands are in benchmarks/README.md.
# node-loss gets a redis-server of its own (a free port, AOF fsynced always, a temporary dir).
bench: install redis-server
	$(BIN)/runcast-bench ceiling --connections 50 --frames 1000
	$(BIN)/runcast-bench ceiling --connections 50 --frames 1000 --transport runcast
	$(BIN)/runcast-bench inprocess --runs 200 --events 200
	$(BIN)/runcast-bench throughput --runs 200 --concurrency 10,50 --plot benchmarks/results/throughput.png
	$(BIN)/runcast-bench fanout --subscribers 100 --events 500 --run-seconds 5
	$(BIN)/runcast-bench reconnect-storm --clients 20 --reconnects 100 --missed 200
	$(BIN)/runcast-bench hold --runs 500 --watched 100 --interval 1 --duration 10
	@dir=$$(mktemp -d); port=$$($(BIN)/python -c 'from benchmarks.server import free_port; print(free_port())'); \
	redis-server --port $$port --bind 127.0.0.1 --save '' --appendonly yes --appendfsync always \
		--dir $$dir >$$dir/redis.log & redis=$$!; \
	for i in $$(seq 100); do redis-cli -p $$port ping >/dev/null 2>&1 && break; sleep 0.1; done; \
	echo "$(BIN)/runcast-bench node-loss --store redis://127.0.0.1:$$port/0 --kills 4 --runs 5"; \
	$(BIN)/runcast-bench node-loss --store redis://127.0.0.1:$$port/0 --kills 4 --runs 5; status=$$?; \
	kill $$redis; wait $$redis; rm -rf $$dir; exit $$status

clean:
	rm -rf $(VENV) runcast.db runcast.db-wal runcast.db-shm
