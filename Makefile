# Thicket build, test, benchmark and run targets. The repository is one Go
# module (github.com/thicket-edge/thicket) plus the API client, api/, a
# module of its own so that programs outside Thicket can import it alone.
# go.work uses both; the root go.mod also replaces the api module with ./api
# so that GOWORK=off builds the same. MODULES lists both: "./..." does not
# descend into a nested module.
MODULES   := . api
PKGS      := ./...
BINARIES  := root_orchestrator/cmd/thicket-root cluster_orchestrator/cmd/thicket-cluster node_engine/cmd/thicket-node node_engine/cmd/thicket-log-writer net_manager/cmd/thicket-net cli/cmd/thicket
BIN       := bin
# The fuzzers run a number of inputs, not a time: a -fuzztime duration can
# end in a spurious "context deadline exceeded" failure with Go 1.26 (Go
# issue 75804, a race in the fuzzing coordinator, fixed in Go 1.27).
FUZZTIME  ?= 300000x
ARTIFACTS ?= test-artifacts
# Where `make run` keeps its state: the binaries' default as root, a
# directory in your home otherwise.
DATA_DIR  ?= $(if $(filter 0,$(shell id -u)),/var/lib/thicket,$(HOME)/.local/share/thicket)

export PATH := $(PATH):/usr/local/go/bin

.PHONY: chaos-doc all build test test-unit fuzz bench bench-go bench-short run vet check fmt clean

all: build

# The binaries as the Dockerfile builds them: static, without file paths
# and symbols. Without cgo also for the footprint: with cgo thicket-node is
# linked dynamically and, as the containerd client imports Go's plugin
# package, exports all its symbols for plugins; 31 MB of it are loaded
# instead of 23, and an idle worker kept 47 MB instead of 34 (README,
# Footprint).
GOBUILD   := CGO_ENABLED=0 go build -trimpath -ldflags='-s -w'

# The worker (node engine and net manager) is also built for the other
# architectures of edge machines, named <binary>-linux-<arch>: the root
# serves them at /download/ (from the directory of its executable by
# default) and the worker script picks the one for its machine. The
# e2e suite runs the arm64 build under qemu-user (TestArm64Worker).
WORKERS     := node_engine/cmd/thicket-node node_engine/cmd/thicket-log-writer net_manager/cmd/thicket-net
CROSS_ARCHS ?= arm64

build:
	@mkdir -p $(BIN)
	$(GOBUILD) -o $(BIN)/ $(addprefix ./,$(BINARIES))
	@for a in $(CROSS_ARCHS); do for p in $(WORKERS); do \
		echo "GOARCH=$$a $$p"; GOOS=linux GOARCH=$$a $(GOBUILD) -o $(BIN)/$$(basename $$p)-linux-$$a ./$$p || exit 1; \
	done; done

vet:
	@for m in $(MODULES); do (cd $$m && go vet $(PKGS)) || exit 1; done

## check: fails on drift: gofmt, `go mod tidy` and `go vet` must leave every module as it is.
check: vet
	@bad=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$bad" ]; then echo "gofmt -w needed:"; echo "$$bad"; exit 1; fi
	@for m in $(MODULES); do (cd $$m && go mod tidy -diff) || { echo "go mod tidy needed in $$m"; exit 1; }; done

## test: everything CI runs: the drift checks, the fuzzers for a bounded time, then all tests.
test: check fuzz test-unit

# Tests keep what they save for a reviewer (the dashboard tests' screenshots)
# under $(ARTIFACTS)/_artifacts.
test-unit:
	@mkdir -p $(ARTIFACTS)
	cd api && go test -count=1 $(PKGS)
	go test -count=1 -timeout 40m -artifacts -outputdir $(CURDIR)/$(ARTIFACTS) $(PKGS)

fuzz:
	go test ./contract/sla -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)
	go test ./contract/sla -run '^$$' -fuzz '^FuzzParsePorts$$' -fuzztime $(FUZZTIME)
	go test ./contract/oam -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	go test ./contract/wire -run '^$$' -fuzz '^FuzzCheckPorts$$' -fuzztime $(FUZZTIME)

## bench: the Go benchmarks of every module, then the system benchmark against docs/targets.md
## (as root, containerd running; writes docs/benchmarks.md; about 15 minutes).
bench: bench-go
	go run ./bench/cmd/thicket-bench -out docs/benchmarks.md

bench-go:
	go test -run '^$$' -bench . -benchmem -count 5 $(PKGS)

## bench-short: smoke run of the system benchmark (about 3 minutes); fails if a measurement fails.
bench-short:
	@mkdir -p $(BIN)
	go run ./bench/cmd/thicket-bench -short -out $(BIN)/benchmarks-short.md

## chaos-doc: the chaos suite (TestChaos, TestRootOutage; as root, containerd running; about
## 5 minutes), writing its results table to docs/chaos.md.
chaos-doc:
	cd e2e && THICKET_CHAOS_DOC=$(CURDIR)/docs/chaos.md go test -count=1 -run 'TestChaos|TestRootOutage' -timeout 30m .

## run: the whole system on embedded defaults: root, one cluster, one local node.
run: build
	scripts/run-all.sh $(BIN) $(DATA_DIR)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)
