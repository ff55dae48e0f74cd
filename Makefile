# thinroot: see README.md. Every target runs on a fresh Debian machine as
# root; `make deps` installs what the tests need.
GO        ?= go
PREFIX    ?= /usr/local
DESTDIR   ?=
COMMIT    := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -X main.commit=$(COMMIT)
BIN       := bin/thinroot
DEMO_DIR  ?= /tmp/thinroot-demo

.PHONY: all build test test-unit check lint deps demo demo-clean clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/thinroot

# Installs the packages the tests use when they are missing.
deps:
	scripts/deps.sh

# Unit tests only: no root, no devices.
test-unit:
	$(GO) test -count=1 ./...

# Every test that runs on this host: as root they create real pools, loop
# devices, mounts and chroots (as a normal user those tests skip, saying why).
test:
	$(GO) test -count=1 -timeout 20m ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Everything CI runs.
check: deps lint build test

demo: deps build
	DEMO_DIR=$(DEMO_DIR) scripts/demo.sh

demo-clean:
	DEMO_DIR=$(DEMO_DIR) scripts/demo.sh clean

clean:
	rm -rf bin
