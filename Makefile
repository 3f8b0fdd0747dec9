PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/rungs validate src/rungs/examples/acme.yaml
	$(BIN)/rungs serve --policy src/rungs/examples/acme.yaml --db sqlite:///rungs.db

demo: $(STAMP)
	$(BIN)/rungs simulate src/rungs/examples/acme.yaml src/rungs/examples/acme-story.yaml

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check src tests bench

bench: $(STAMP)
	$(BIN)/python bench/business_time.py --json
	$(BIN)/python bench/core.py --json
	$(BIN)/python bench/oncall.py --json

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
