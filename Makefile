# `make dev` runs the hello example on the embedded engine; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install services dev test test-ts screenshots check lint typecheck imports clean bench \
	bench-dashboard mutate mutate-quick plant-bugs

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	# render and render_sdk both ship a `render-workflows` script: render 1.x's must win
	$(BIN)/pip install --quiet --force-reinstall --no-deps 'render==1.5.0'
	touch $(STAMP)

install: $(STAMP)

dev: $(STAMP)
	$(BIN)/conveyor dev examples/hello

# What the tests need on the machine (PostgreSQL, Docker, Chromium, ...): each step is idempotent.
services:
	@for step in .ci/setup.d/*.sh; do echo "== $$step"; bash "$$step" || exit 1; done

test: $(STAMP) services
	$(BIN)/pytest

# Conveyor's TypeScript SDK: built with tsc, tested with Node's own test runner
test-ts:
	bash .ci/setup.d/15-node.sh
	cd sdk/typescript && npm ci --no-audit --no-fund && npm run build && npm test

# The tests write their screenshots to a temporary folder; this refreshes docs/screenshots.
screenshots: $(STAMP)
	bash .ci/setup.d/40-chromium.sh
	SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(BIN)/pytest tests/e2e -q

# Conveyor beside Celery and RQ (docs/benchmarks.md); e.g. make bench ARGS="--quick --systems rq"
bench: $(STAMP)
	$(BIN)/python -m bench $(ARGS)

# The dashboard under load in Chromium: 10,000 runs, a 1,000-run tree, bytes per live update
bench-dashboard: $(STAMP)
	bash .ci/setup.d/40-chromium.sh
	$(BIN)/python -m bench.dashboard $(ARGS)

# Mutation testing (mutmut) of the modules that guard tenants and money: the score per module and
# every surviving mutant; docs/testing.md. `mutate-quick` is the subset CI runs.
mutate: $(STAMP)
	$(BIN)/python -m tests.mutation.run --check $(ARGS)

mutate-quick: $(STAMP)
	$(BIN)/python -m tests.mutation.run --quick --check $(ARGS)

# The six one-line bugs that once slipped through, planted one by one in a copy: each must fail a test
plant-bugs: $(STAMP)
	$(BIN)/python -m tests.mutation.plant_bugs $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy sdk/conveyor core scheduler builder app tests bench

imports: $(STAMP)
	$(BIN)/lint-imports

check: lint typecheck imports

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build/mutation
