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
FUZZ_EXAMPLES ?= 100000

.DEFAULT_GOAL := help
.PHONY: help setup demo run collect site publish restore live test fuzz bench bench-collector bench-site bench-live bench-publish bench-enrich stop lint clean check-content vnu axe browser servers
VNU_JAR := var/tools/vnu/node_modules/vnu-jar/build/dist/vnu.jar
VNU_VERSION := 26.9.27
AXE_JS := var/tools/axe/node_modules/axe-core/axe.min.js
AXE_VERSION := 4.14.1
CHROMIUM ?= /usr/bin/chromium

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

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

run: $(STAMP) ## Run every process under supervisord, with the dashboard (EVENTS=…, RUN_ARGS=--no-static)
	$(PY) -m admin supervise $(EVENTS) $(RUN_ARGS)

collect: $(STAMP) ## Collect every event's sources into the archive and Redis
	$(PY) scripts/with_redis.py -- $(PY) -m collector run

site: $(STAMP) ## Build the static site into output/
	$(PY) -m sitegen build

publish: $(STAMP) ## Publish output/ to AFA_PUBLISH_TARGET (S3-compatible storage or rsync): only what changed
	$(PY) -m sitegen publish

restore: $(STAMP) ## Bring the archive back from its Litestream replica (AFA_REPLICA_URL)
	$(PY) -m admin restore

live: $(STAMP) ## Serve the live SSE sidecar
	$(PY) scripts/with_redis.py -- $(PY) -m live serve

stop: $(STAMP) ## Stop the embedded Redis that `make collect` / `make live` started
	$(PY) scripts/with_redis.py --stop

$(VNU_JAR): | browser
	npm install --prefix var/tools/vnu --no-audit --no-fund --silent vnu-jar@$(VNU_VERSION)

vnu: $(VNU_JAR) ## Install the Nu HTML Checker (vnu-jar, from npm) used by the tests

$(AXE_JS): | browser
	npm install --prefix var/tools/axe --no-audit --no-fund --silent axe-core@$(AXE_VERSION)

axe: $(AXE_JS) ## Install axe-core (from npm), the accessibility checker the browser tests inject

browser: ## Debian's Chromium and a Java runtime for the browser and HTML tests (installed when root)
	@scripts/need_system_packages.sh $(CHROMIUM):chromium java:default-jre-headless npm:npm

servers: ## Debian's rsync and HAProxy for the publish and deployment tests (installed when root)
	@scripts/need_system_packages.sh rsync:rsync /usr/sbin/haproxy:haproxy

test: $(STAMP) browser servers $(VNU_JAR) $(AXE_JS) ## Run the whole test suite against real Redis, SQLite, servers and a browser
	AFA_CHROMIUM=$(CHROMIUM) $(PY) -m pytest

fuzz: $(STAMP) ## Fuzz every source's parsing with mutated real payloads (FUZZ_EXAMPLES=100000 per kind)
	AFA_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest tests/collector/test_sources_fuzz.py -p no:cacheprovider -q -s --timeout=0 --durations=0

bench: $(STAMP) $(RECORDING) ## Run every benchmark and print its figures
	$(PY) tests/bench/run.py

bench-collector: $(STAMP) ## Collector throughput and source-to-Redis latency
	$(PY) tests/bench/bench_collector.py

bench-site: $(STAMP) ## Site build at 100,000 and 1,000,000 posts: full, one session, no change, floor, search
	$(PY) tests/bench/bench_site.py

bench-publish: $(STAMP) servers ## Publish the 100,000-post site to a local S3 server and rsync; Litestream's lag
	$(PY) tests/bench/bench_publish.py

bench-live: $(STAMP) servers ## SSE fan-out to 1,000 / 5,000 / 10,000 clients: a sidecar, two behind HAProxy, nginx + Nchan
	$(PY) tests/bench/bench_live.py

bench-enrich: $(STAMP) ## Bluesky author hydration latency and a 10,000-post count refresh per source
	$(PY) tests/bench/bench_enrich.py

lint: $(STAMP) ## ruff check and format check
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean: ## Stop the embedded Redis; remove output/, var/ and the virtual environment
	-@test -x $(PY) && $(PY) scripts/with_redis.py --stop 2>/dev/null
	rm -rf output var $(VENV)
