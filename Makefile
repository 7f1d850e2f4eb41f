# Every target installs what it needs, once: a second run is fast.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install run test test-unit bench lint clean java browser postgres

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@rm -f $(VENV)/.installed-*
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable '.[test]'
	@touch $@

install: $(STAMP)

# Java 17+ and Maven assemble the bundled broker; installed from Debian when missing.
java:
	@bash deploy/local/ensure-java.sh

# Headless Debian chromium and playwright-core drive the browser SDK test.
BROWSER_DEPS := tests/browser/node_modules/.package-lock.json

browser: $(BROWSER_DEPS)
	@test -x /usr/bin/chromium || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get install -y chromium || { $$SUDO apt-get update && $$SUDO apt-get install -y chromium; }; }

$(BROWSER_DEPS): tests/browser/package.json tests/browser/package-lock.json
	npm ci --prefix tests/browser --no-audit --no-fund

# Debian's PostgreSQL server and contrib (pg_stat_statements) for the collector's tests.
PG_PACKAGES := postgresql postgresql-contrib

postgres:
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get install -y $(PG_PACKAGES) || { $$SUDO apt-get update && $$SUDO apt-get install -y $(PG_PACKAGES); }; }

run: install java
	$(BIN)/pulseline run

test: install java browser postgres
	$(BIN)/pulseline kafka assemble
	$(BIN)/pytest

test-unit: install
	$(BIN)/pytest tests/unit

bench: install java
	$(BIN)/pulseline bench

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	-@test -x $(BIN)/pulseline && $(BIN)/pulseline kafka stop >/dev/null 2>&1 || true
	rm -rf $(VENV) .pulseline .mypy_cache .ruff_cache .pytest_cache *.egg-info bench/results/*.json bench/results/*.png
