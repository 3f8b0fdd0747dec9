PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run demo audit test test-unit test-integration test-e2e lint imports bench bench-storms clean debian-packages assets

# Installs the versions pinned in constraints.txt (what the tests passed with).
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The console's static assets from their npm registry packages (package.json, pinned by
# package-lock.json): `npm ci` once, then their dist files copied into the package, where
# Rungs serves them from /static/vendor/ (no CDN, nothing fetched at run time).
VENDOR := src/rungs/api/web/static/vendor
NPM_STAMP := node_modules/.installed
$(NPM_STAMP): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund
	touch $(NPM_STAMP)
$(VENDOR)/.copied: $(NPM_STAMP)
	mkdir -p $(VENDOR)
	cp node_modules/htmx.org/dist/htmx.min.js node_modules/htmx-ext-sse/dist/sse.min.js \
	  node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css $(VENDOR)/
	cp node_modules/htmx.org/LICENSE $(VENDOR)/htmx.LICENSE
	cp node_modules/htmx-ext-sse/LICENSE $(VENDOR)/htmx-ext-sse.LICENSE
	cp node_modules/uplot/LICENSE $(VENDOR)/uplot.LICENSE
	touch $(VENDOR)/.copied
assets: $(VENDOR)/.copied

run: $(STAMP) assets
	$(BIN)/rungs validate src/rungs/examples/acme.yaml
	$(BIN)/rungs serve --policy src/rungs/examples/acme.yaml --db sqlite:///rungs.db

demo: $(STAMP)
	$(BIN)/rungs simulate src/rungs/examples/acme.yaml src/rungs/examples/acme-story.yaml

# Every tier: unit (pure, no I/O), integration (databases, servers, sockets), e2e (real
# processes); the layer contract first, so a layer violation fails the run.
test: $(STAMP) assets debian-packages imports
	$(BIN)/python -m pytest -n 2 -p no:cacheprovider tests/unit tests/integration tests/e2e

test-unit: $(STAMP)
	$(BIN)/python -m pytest -n 2 -p no:cacheprovider tests/unit

test-integration: $(STAMP) assets debian-packages
	$(BIN)/python -m pytest -n 2 -p no:cacheprovider tests/integration

test-e2e: $(STAMP) assets debian-packages
	$(BIN)/python -m pytest -n 2 -p no:cacheprovider tests/e2e

# The layers of ARCHITECTURE.md, as import-linter contracts in pyproject.toml.
imports: $(STAMP)
	$(BIN)/lint-imports

# The real peers the tests start, from Debian's packages: Prometheus Alertmanager
# (tests/integration/test_ingest_alertmanager.py), Chromium for the console's browser tests
# (Playwright drives /usr/bin/chromium; its own browser download cannot work here) and Dovecot
# for the IMAP poller's tests (tests/dovecot.py starts one per module). Installed only when one
# is missing.
DEBIAN_PACKAGES := prometheus-alertmanager chromium dovecot-imapd
debian-packages:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; fi

lint: $(STAMP) imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check src tests bench

bench: $(STAMP)
	$(BIN)/python bench/business_time.py --json
	$(BIN)/python bench/core.py --json
	$(BIN)/python bench/oncall.py --json

# Rungs beside Alertmanager and an alert storm (issue 17): bench/peers.py drives both with wrk
# (Debian's package), as the issue's own figures were taken.
bench-storms: $(STAMP) debian-packages
	@dpkg -s wrk >/dev/null 2>&1 || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y wrk)
	$(BIN)/python bench/peers.py --json
	$(BIN)/python bench/storm.py --json

# Known vulnerabilities in the pinned versions (pip-audit asks PyPI's advisory database, so
# it needs the network; without it this says so and fails).
audit: $(STAMP)
	@$(BIN)/python -m pip_audit --version >/dev/null 2>&1 || $(BIN)/python -m pip install -q pip-audit
	@$(BIN)/python -m pip_audit --strict -r constraints.txt --no-deps --disable-pip \
	  || { echo "make audit: pip-audit could not finish (no network to the advisory database, or a finding above)"; exit 1; }

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info node_modules $(VENDOR)
