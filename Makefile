# Provium's build, test and demo entry points (see README.md).
GO ?= go
BIN := bin

.PHONY: all build deps test demo bench clean

all: build

deps:
	./scripts/install-deps.sh

build: deps
	$(GO) build -o $(BIN)/provium ./cmd/provium
	$(GO) build -o $(BIN)/provium-coverage ./cmd/provium-coverage
	@# Same flags as internal/agentbin.BuildFlags.
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags="-s -w" -o $(BIN)/provium-agent ./cmd/provium-agent
	@# The worker executor (C, static PIE, single-threaded); same flags as
	@# internal/agentbin.WorkerCompilers. musl-gcc's specs know no
	@# -static-pie, so musl's rcrt1.o (beside the Scrt1.o it links) is
	@# named by hand.
	musl-gcc -Os -s -Wall -fPIE -static-pie -nostartfiles -Wl,-static,--no-dynamic-linker,-z,text \
		"$$(dirname "$$(musl-gcc -### provium-probe.o 2>&1 | grep -o '[^ "]*/Scrt1\.o' | head -n1)")/rcrt1.o" \
		-o $(BIN)/provium-worker cmd/provium-worker/worker.c

# The whole test suite: vet, the Lua binding and runner under the race
# detector, then every package (VM tests boot real guests under TCG).
test: deps
	$(GO) vet ./...
	@# Build the default guest image once up front: several test packages
	@# boot it and would otherwise race to build it in parallel.
	$(GO) run ./cmd/provium image build >/dev/null
	$(GO) test -race ./internal/lua/... ./internal/runner/... ./internal/lab/...
	$(GO) test -timeout 45m ./...

# Runs the example suite against the default guest image.
demo: build
	./scripts/demo.sh

bench: build
	./scripts/bench.sh

clean:
	rm -rf $(BIN)
