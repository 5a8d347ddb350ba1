# closeloop — the two commands: `make run`, `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall whenever pyproject.toml changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The dashboard's chart library, from npm at build time (never a CDN at run time).
CHARTJS := api/static/vendor/chart.umd.min.js
$(CHARTJS):
	npm install --no-save --no-audit --no-fund --prefix .build/npm chart.js@4
	mkdir -p $(dir $@)
	cp .build/npm/node_modules/chart.js/dist/chart.umd.min.js $@
	cp .build/npm/node_modules/chart.js/LICENSE.md $(dir $@)chart.js.LICENSE.md

run: $(STAMP) $(CHARTJS)
	$(BIN)/closeloop up

test: $(STAMP) $(CHARTJS)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy domain
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
