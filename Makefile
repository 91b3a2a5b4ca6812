# A Feed Apart: the organizer's verbs. `make` alone lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed
EVENT  ?= northwind-2026
RECORDING := var/recordings/$(EVENT).jsonl
SPEED  ?= 60
DURATION ?= 0

.DEFAULT_GOAL := help
.PHONY: help setup demo run collect site live test bench lint clean check-content

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

setup: $(STAMP) ## Create .venv and install everything (done by every other target)

$(RECORDING): scripts/make_sample.py content/$(EVENT)/schedule.yaml | $(STAMP)
	$(PY) scripts/make_sample.py --content content/$(EVENT) --out $@

check-content: $(STAMP) ## Check content/ and list every mistake with file:line
	$(PY) -m sitegen check-content

demo: $(STAMP) $(RECORDING) ## Run the whole system on the sample conference (SPEED=60)
	$(PY) scripts/demo.py --event $(EVENT) --recording $(RECORDING) --speed $(SPEED) --duration $(DURATION)

run: $(STAMP) ## Run every process for real events under a supervisor
	$(PY) scripts/demo.py --event $(EVENT)

collect: $(STAMP) ## Collect every event's sources into the archive and Redis
	$(PY) -m collector run

site: $(STAMP) ## Build the static site into output/
	$(PY) -m sitegen build

live: $(STAMP) ## Serve the live SSE sidecar
	$(PY) -m live serve

test: $(STAMP) ## Run the whole test suite against real Redis, SQLite and servers
	$(PY) -m pytest

bench: $(STAMP) $(RECORDING) ## Run the benchmarks and print their figures
	$(PY) tests/bench/run.py

lint: $(STAMP) ## ruff check and format check
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean: ## Remove output/, var/ and the virtual environment
	rm -rf output var $(VENV)
