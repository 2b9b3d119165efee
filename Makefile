# Postback pipeline. `make help` lists the targets.
#
# Two commands on a fresh machine (see README.md):
#   make up     start Kafka, ClickHouse, topics, migrations and the services; show data flowing
#   make test   start Kafka and ClickHouse if needed, then vet, format-check and run every test

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
GO ?= go
BIN := $(CURDIR)/bin
export POSTBACK_LOCAL_STATE_DIR ?= $(HOME)/.local/state/postback
export POSTBACK_CACHE_DIR ?= $(HOME)/.cache/postback
FUZZTIME ?= 30s
RSS_CLICKS ?= 10000000
BENCHTIME ?= 1s
SIM_RATE ?= 100
SIM_DURATION ?= 20s

.PHONY: help up down infra infra-down tools cluster cluster-down bootstrap services services-down demo simulate chaos build test unit lint fmt-check bench fuzz docs clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

up: build infra bootstrap services demo simulate ## start everything, show data flowing, then a short simulated day checked against ClickHouse

down: services-down infra-down ## stop the services, Kafka and ClickHouse (state is kept)

infra: ## start Kafka and ClickHouse (idempotent)
	deploy/local/kafka.sh start
	deploy/local/clickhouse.sh start

infra-down:
	deploy/local/kafka.sh stop
	deploy/local/clickhouse.sh stop

tools: ## install the test tools besides Go, Kafka and ClickHouse (promtool, from Debian's prometheus package)
	deploy/local/tools.sh promtool

cluster: ## start ZooKeeper and a 2 shards x 2 replicas ClickHouse cluster (native 127.0.0.1:9401-9404; set clickhouse.cluster=postback)
	deploy/local/clickhouse-cluster.sh start

cluster-down:
	deploy/local/clickhouse-cluster.sh stop

bootstrap: build ## create topics and apply ClickHouse migrations (idempotent)
	$(BIN)/postbackctl bootstrap

services: build ## start the services in the background
	deploy/local/services.sh start

services-down:
	deploy/local/services.sh stop

demo: ## send sample traffic through the running pipeline and query ClickHouse
	deploy/local/demo.sh

simulate: ## a short simulated day (every MMP, fraud, retries) through the running pipeline; prints CPI, CTR... per campaign and "all equal" against ClickHouse (docs/simulator.md)
	$(BIN)/postbackctl simulate --ingest-config=deploy/local/config/ingest.yaml --rate=$(SIM_RATE) --duration=$(SIM_DURATION) --min-ctit=12s --max-ctit=20s --max-delay=5s --reinstall-after=20s --check

chaos: infra ## the long chaos run: services SIGKILLed, broker restarted, ClickHouse stopped 60 s under a simulated day; prints the tally (docs/simulator.md)
	CHAOS_LONG=1 $(GO) test -tags integration -count=1 -run '^TestChaos$$' -v -timeout 40m ./services/e2e/

build: ## build every service into bin/
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./services/...

test: infra tools lint ## the test command: vet, gofmt, then unit + integration tests (real Kafka and ClickHouse) with -race
	$(GO) test -race -tags integration -count=1 -timeout 15m ./...

unit: ## fast tests only (no Kafka or ClickHouse needed)
	$(GO) test -count=1 ./...

lint: fmt-check ## go vet (with and without the integration tag) and gofmt
	$(GO) vet ./...
	$(GO) vet -tags integration ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

bench: infra ## benchmarks: ns/op and allocs/op, side-by-side ratios (ingest vs bare net/http, sink vs raw clickhouse-go, attribution stages vs store and rules alone, vs a Kafka pass-through, two instances vs one, forwarder vs a plain net/http loop), pipeline freshness, the simulator's highest rate at p99 <= 2 s
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./pkg/postback/
	$(GO) test -run '^$$' -bench 'IngestVsBare' -benchtime 1x ./pkg/ingest/
	$(GO) test -tags integration -run '^$$' -bench 'SinkVsRaw' -benchtime 1x ./pkg/sink/
	@echo "The sink in cluster mode, into a 2 shards x 2 replicas cluster of its own (about 15 s):"
	$(GO) test -tags integration -run '^$$' -bench 'SinkCluster' -benchtime 1x ./pkg/sink/
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/attribution/
	@echo "Attribution in process: clicks stored and installs joined per CPU second (/cpu-s), beside store-only and decide-only:"
	$(GO) test -run '^$$' -bench 'Engine' -benchmem -benchtime 50000x ./pkg/join/
	$(GO) test -run '^$$' -bench 'StoredClickBytes|EndToEndKfake' -benchtime 1x ./pkg/join/
	@echo "Attribution through the local broker: clicks/s and installs/s beside a stateless transactional pass-through, and two instances beside one (about a minute):"
	$(GO) test -tags integration -run '^$$' -bench 'ThroughBroker' -benchtime 1x -timeout 20m ./pkg/join/
	@echo "Freshness from a postback's 2xx to its row in ClickHouse, through the three services at 1000 installs/s + 5000 clicks/s + 500 events/s (about 70 s):"
	$(GO) test -tags integration -run '^$$' -bench 'Freshness' -benchtime 1x -timeout 15m ./services/attribution/
	@echo "The simulator's highest rate with freshness p99 <= 2 s through the three services, and where the CPU goes (30 s per rate, doubling from 100/s; a few minutes):"
	$(GO) test -tags integration -run '^$$' -bench 'SimulatedRate' -benchtime 1x -timeout 30m ./services/e2e/
	@echo "Forwarder: callbacks/s to a local receiver beside a plain net/http loop sending the same requests, and p99 from an install committed to its callback received:"
	$(GO) test -tags integration -run '^$$' -bench 'ForwarderVsPlain|SenderVsPlain' -benchtime 1x -timeout 10m ./pkg/forwarder/
	@echo "RSS after 1M and $(RSS_CLICKS) clicks stored (about 20 s per million on 2 cores):"
	BENCH_RSS_CLICKS=$(RSS_CLICKS) $(GO) test -run '^$$' -bench 'RSS' -benchtime 1x -timeout 90m ./pkg/join/

fuzz: ## run every fuzz target for FUZZTIME each (corpus kept in testdata/fuzz)
	@for pkg in $$($(GO) list ./pkg/...); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/func //'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

docs: ## regenerate docs/configuration.md and config.example.yaml from the config structs (pkg/servicecfg)
	$(GO) test ./pkg/servicecfg -run TestDocsCurrent -count=1 -update

clean: ## remove build output (not the Kafka/ClickHouse state: see make down)
	rm -rf $(BIN)
