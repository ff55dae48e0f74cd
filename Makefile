# thinroot: see README.md. Every target runs on a fresh Debian machine as
# root; `make deps` installs what the tests need.
GO        ?= go
PREFIX    ?= /usr/local
DESTDIR   ?=
BINDIR    ?= $(PREFIX)/bin
MANDIR    ?= $(PREFIX)/share/man
DATADIR   ?= $(PREFIX)/share/thinroot
# Where systemd looks for units, sysusers.d and tmpfiles.d snippets that
# packages install: under the prefix (/usr/lib/systemd/system for /usr,
# /usr/local/lib/systemd/system for the default).
UNITDIR   ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
LICENSEDIR  ?= $(PREFIX)/share/licenses/thinroot
COMPDIR   ?= $(PREFIX)/share/bash-completion/completions
COMMIT    := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
# The version is the newest release tag (v1.2.3, with -N-gCOMMIT after it
# for later commits, -dirty for local changes); without one, 0.0.0 and
# the commit. VERSION=... overrides it (a release tarball has no .git).
VERSION   ?= $(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null || echo 0.0.0-$(COMMIT))
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
# The same boot runs builds' cgroups on cgroup v2 (this host has v1's
# controllers; the VM mounts cgroup2 with all of them): about a minute more.
# About 12 minutes on an idle 2-CPU host under TCG; beside a CPU-heavy job
# it has taken 23, and the bounds leave room for more within CI's 90.
test-vm:
	mkdir -p _out
	$(GO) test -c -tags $(TEST_TAGS) -o _out/lvm2.test ./lvm/lvm2
	$(GO) test -c -tags $(TEST_TAGS) -o _out/cgroup.test ./internal/cgroup
	$(GO) test -c -tags $(TEST_TAGS) -o _out/builder.test ./builder
	testdata/vm/run --disk-size 8G --timeout 3300 -- -C lvm/lvm2 $(CURDIR)/_out/lvm2.test -test.v -test.timeout 50m \
		--- -C internal/cgroup $(CURDIR)/_out/cgroup.test -test.v -test.run TestGroupOnCgroupV2 -test.timeout 5m \
		--- -C builder $(CURDIR)/_out/builder.test -test.v -test.run 'TestLimitsMemoryHogAndForkBomb|TestLimitsBootstrapOutOfMemory' -test.timeout 8m

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
	install -D -m 0644 contrib/thinroot.sysusers.conf $(DESTDIR)$(SYSUSERSDIR)/thinroot.conf
	install -D -m 0644 contrib/thinroot.tmpfiles.conf $(DESTDIR)$(TMPFILESDIR)/thinroot.conf
	install -D -m 0644 LICENSE $(DESTDIR)$(LICENSEDIR)/LICENSE
	$(BIN) completion bash > $(DESTDIR)$(COMPDIR)/thinroot
	install -D -m 0755 testdata/bootstrap/busybox.sh $(DESTDIR)$(DATADIR)/bootstrap/busybox.sh
	install -D -m 0755 testdata/bootstrap/debian.sh $(DESTDIR)$(DATADIR)/bootstrap/debian.sh

# A staged install, checked file by file.
install-check:
	@tmp=$$(mktemp -d) && $(MAKE) --no-print-directory install DESTDIR=$$tmp PREFIX=/usr >/dev/null && \
	for f in usr/bin/thinroot usr/share/man/man1/thinroot.1 usr/share/man/man5/thinroot-tree.5 \
		usr/share/man/man5/thinroot.conf.5 usr/share/man/man7/thinroot-api.7 usr/lib/systemd/system/thinroot.service \
		usr/lib/sysusers.d/thinroot.conf usr/lib/tmpfiles.d/thinroot.conf usr/share/licenses/thinroot/LICENSE \
		usr/share/bash-completion/completions/thinroot usr/share/thinroot/bootstrap/busybox.sh; do \
		test -s $$tmp/$$f || { echo "install-check: $$f missing"; rm -rf $$tmp; exit 1; }; done && \
	test ! -e $$tmp/etc || { echo "install-check: files outside the prefix: $$(cd $$tmp && find etc -type f)"; rm -rf $$tmp; exit 1; } && \
	grep -q '^ExecStart=/usr/bin/thinroot serve .*--allow-other' $$tmp/usr/lib/systemd/system/thinroot.service || \
		{ echo "install-check: the unit does not mount the tree with allow_other"; rm -rf $$tmp; exit 1; } && \
	grep -q '^Delegate=yes' $$tmp/usr/lib/systemd/system/thinroot.service && \
	grep -q '^g mock ' $$tmp/usr/lib/sysusers.d/thinroot.conf && \
	bash -n $$tmp/usr/share/bash-completion/completions/thinroot && \
	{ $$tmp/usr/bin/thinroot --version | grep -qF 'thinroot $(VERSION) ' || \
		{ echo "install-check: --version does not say $(VERSION)"; rm -rf $$tmp; exit 1; }; } && \
	rm -rf $$tmp && echo "install-check: ok"

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
