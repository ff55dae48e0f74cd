# thinroot: see README.md. Every target runs on a fresh Debian machine as
# root; `make deps` installs what the tests need.
GO        ?= go
PREFIX    ?= /usr/local
DESTDIR   ?=
BINDIR    ?= $(PREFIX)/bin
MANDIR    ?= $(PREFIX)/share/man
DATADIR   ?= $(PREFIX)/share/thinroot
UNITDIR   ?= /etc/systemd/system
COMPDIR   ?= $(PREFIX)/share/bash-completion/completions
COMMIT    := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
VERSION   := $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS   := -X main.commit=$(COMMIT) -X main.version=$(VERSION)
BIN       := bin/thinroot
DEMO_DIR  ?= /tmp/thinroot-demo
MANPAGES  := man/thinroot.1 man/thinroot-tree.5 man/thinroot.conf.5 man/thinroot-api.7
# Crash points (internal/crashpoint) are compiled only into test builds
# with this tag: the released binary cannot be told to kill itself. Every
# test target below sets it, so CI runs every crash test.
TEST_TAGS := crashpoints

.PHONY: all build bench test test-btrfs test-unit test-vm check lint deps demo demo-clean clean man install install-check \
	faults faults-vm fuzz-short fuzz-long reliability

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/thinroot

# Installs the packages the tests use when they are missing.
deps:
	scripts/deps.sh

# Unit tests only: no root, no devices (the Manager's contract suite runs
# on the memory backend; what needs root skips and says so).
test-unit:
	$(GO) test -count=1 -tags $(TEST_TAGS) ./...

# Every test that runs on this host: as root they create real pools, loop
# devices, mounts and chroots (as a normal user those tests skip, saying why).
test:
	$(GO) test -count=1 -tags $(TEST_TAGS) -timeout 25m ./...
	$(MAKE) --no-print-directory test-btrfs

# The tree's, the builder's and the fault suite's tests again on the btrfs
# backend (the lvm/btrfs package runs the contract suite in make test).
test-btrfs:
	THINROOT_TEST_BACKEND=btrfs $(GO) test -count=1 -tags $(TEST_TAGS) -timeout 25m ./fsview ./builder ./faults

# The lvm2 backend on real dm-thin: this host has no device-mapper, so the
# tests run in a qemu VM booting a stock Debian kernel (testdata/vm/README.md).
# About 15 minutes on an idle 2-CPU host under TCG; beside other CPU-heavy
# jobs it has taken 28, so the bounds leave room for that within CI's 90.
test-vm:
	mkdir -p _out
	$(GO) test -c -tags $(TEST_TAGS) -o _out/lvm2.test ./lvm/lvm2
	testdata/vm/run --disk-size 8G --timeout 3100 -- -C lvm/lvm2 $(CURDIR)/_out/lvm2.test -test.v -test.timeout 50m

# The fault suite alone (it also runs in `make test`): crash points, the
# FUSE server killed, a full pool, races, bad input, security; file backend.
faults:
	$(GO) test -count=1 -tags $(TEST_TAGS) -timeout 25m -v ./faults/

# The crash matrix on lvm2, in the VM: every crash point that lives outside
# the file backend's own code. About 20 minutes under TCG, so CI leaves it to
# this target (the lvm2 suite of `make test-vm` kills init, workdir create,
# snapshot, remove-snapshot and scrub on lvm2 in CI). Writes the report
# lines RELIABILITY.md reads to _out/faults-vm.log.
faults-vm: SHELL := /bin/bash
faults-vm:
	mkdir -p _out
	$(GO) test -c -tags lvm2,$(TEST_TAGS) -o _out/faults-lvm2.test ./faults
	THINROOT_FAULTS_REPORT=stdout THINROOT_FAULTS_RUNS=$${THINROOT_FAULTS_RUNS:-1} \
	THINROOT_FAULTS_COMMIT=$$(git describe --always --dirty) \
	testdata/vm/run --disk-size 8G --timeout 3600 -- -C faults $(CURDIR)/_out/faults-lvm2.test \
		-test.run 'TestCrashMatrixLVM2' -test.v -test.timeout 55m 2>&1 | tee _out/faults-vm.log; \
		exit $${PIPESTATUS[0]}

# Every fuzz target for a fixed number of inputs (about 10 s each idle;
# FUZZTIME=30s makes it a time instead); failing inputs land in
# testdata/fuzz/ to commit as regression seeds. fuzz-long: 5 minutes each.
FUZZTIME ?=
fuzz-short:
	FUZZTIME=$(FUZZTIME) scripts/fuzz-short.sh
fuzz-long:
	FUZZTIME=5m scripts/fuzz-short.sh

# Runs the fault suite and the fuzz targets and writes RELIABILITY.md; add
# the lvm2 matrix with `make faults-vm reliability EXTRA_REPORTS=_out/faults-vm.log`.
reliability:
	EXTRA_REPORTS=$(EXTRA_REPORTS) TEST_TAGS=$(TEST_TAGS) scripts/reliability.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags $(TEST_TAGS) ./...
	$(GO) vet -tags lvm2,$(TEST_TAGS) ./...

# Everything CI runs, tier by tier, with a table of each tier's time at
# the end (scripts/check.sh).
check:
	scripts/check.sh deps lint build man install-check test fuzz-short test-vm

man: $(MANPAGES)

man/%: man/%.md
	$(GO) tool go-md2man -in $< -out $@

install: build man
	install -D -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/thinroot
	install -D -m 0644 man/thinroot.1 $(DESTDIR)$(MANDIR)/man1/thinroot.1
	install -D -m 0644 man/thinroot-tree.5 $(DESTDIR)$(MANDIR)/man5/thinroot-tree.5
	install -D -m 0644 man/thinroot.conf.5 $(DESTDIR)$(MANDIR)/man5/thinroot.conf.5
	install -D -m 0644 man/thinroot-api.7 $(DESTDIR)$(MANDIR)/man7/thinroot-api.7
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(COMPDIR)
	sed 's|@BINDIR@|$(BINDIR)|g' contrib/thinroot.service.in > $(DESTDIR)$(UNITDIR)/thinroot.service
	$(BIN) completion bash > $(DESTDIR)$(COMPDIR)/thinroot
	install -D -m 0755 testdata/bootstrap/busybox.sh $(DESTDIR)$(DATADIR)/bootstrap/busybox.sh
	install -D -m 0755 testdata/bootstrap/debian.sh $(DESTDIR)$(DATADIR)/bootstrap/debian.sh

# A staged install, checked file by file.
install-check:
	@tmp=$$(mktemp -d) && $(MAKE) --no-print-directory install DESTDIR=$$tmp PREFIX=/usr >/dev/null && \
	for f in usr/bin/thinroot usr/share/man/man1/thinroot.1 usr/share/man/man5/thinroot-tree.5 \
		usr/share/man/man5/thinroot.conf.5 usr/share/man/man7/thinroot-api.7 etc/systemd/system/thinroot.service \
		usr/share/bash-completion/completions/thinroot usr/share/thinroot/bootstrap/busybox.sh; do \
		test -s $$tmp/$$f || { echo "install-check: $$f missing"; rm -rf $$tmp; exit 1; }; done && \
	grep -q '^ExecStart=/usr/bin/thinroot serve' $$tmp/etc/systemd/system/thinroot.service && \
	bash -n $$tmp/usr/share/bash-completion/completions/thinroot && \
	$$tmp/usr/bin/thinroot --version && rm -rf $$tmp && echo "install-check: ok"

# thinroot against untar, cp -a and overlayfs, the control plane, parallel
# builds and lvm2 command counts (in the VM), in one run of under 15 minutes;
# writes BENCHMARKS.json, BENCHMARKS.md and ready-time.svg.
bench: build
	scripts/bench.sh $(BENCH_FLAGS)

demo: deps build
	DEMO_DIR=$(DEMO_DIR) scripts/demo.sh

demo-clean:
	DEMO_DIR=$(DEMO_DIR) scripts/demo.sh clean

clean:
	rm -rf bin $(MANPAGES)
