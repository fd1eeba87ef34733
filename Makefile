# reckerd: `make run` builds and starts the daemon in the foreground; `make test` runs
# every test against a real daemon and real upstreams on loopback. Both install missing
# Debian packages first (as root; otherwise they print the command to run).

SWIFT ?= swift
PREFIX ?= /usr/local
CONFIG ?= config/reckerd.json

.PHONY: all deps build release run test bench install uninstall clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

run: release
	.build/release/reckerd --config $(CONFIG)

# XCTest only: the suite has no swift-testing tests, and its empty summary would read
# as "no tests ran".
test: deps
	$(SWIFT) build --build-tests
	RECKER_BIN_DIR="$$($(SWIFT) build --show-bin-path)" $(SWIFT) test --skip-build --disable-swift-testing

# Benchmarks W1-W6 (bench/bench.py): writes docs/BENCHMARKS.md and docs/benchmarks.png; then
# the soak (bench/soak.py: 1,000,000 requests) appends its section.
bench: release
	@scripts/install-deps.sh hyperfine:hyperfine wrk:wrk python3-matplotlib
	/usr/bin/python3 bench/bench.py
	/usr/bin/python3 bench/soak.py

# Binaries with the Swift runtime linked in (the host needs no Swift), the default config,
# the systemd units and the `reckerd` group that may use the socket.
STATIC_BUILD = .build-static
install: deps
	$(SWIFT) build -c release --static-swift-stdlib --scratch-path $(STATIC_BUILD)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/etc/reckerd $(DESTDIR)/etc/systemd/system $(DESTDIR)$(PREFIX)/share/doc/reckerd
	install -m 0755 $(STATIC_BUILD)/release/reckerd $(STATIC_BUILD)/release/recker $(STATIC_BUILD)/release/recker-direct $(DESTDIR)$(PREFIX)/bin/
	[ -e $(DESTDIR)/etc/reckerd/reckerd.json ] || install -m 0644 config/reckerd.json $(DESTDIR)/etc/reckerd/reckerd.json
	install -m 0644 deploy/systemd/reckerd.service deploy/systemd/reckerd.socket $(DESTDIR)/etc/systemd/system/
	install -m 0644 README.md docs/PROTOCOL.md $(DESTDIR)$(PREFIX)/share/doc/reckerd/
	getent group reckerd >/dev/null || groupadd --system reckerd
	-systemctl daemon-reload 2>/dev/null

uninstall:
	-systemctl disable --now reckerd.socket reckerd.service 2>/dev/null
	rm -f $(DESTDIR)$(PREFIX)/bin/reckerd $(DESTDIR)$(PREFIX)/bin/recker $(DESTDIR)$(PREFIX)/bin/recker-direct
	rm -f $(DESTDIR)/etc/systemd/system/reckerd.service $(DESTDIR)/etc/systemd/system/reckerd.socket
	rm -rf $(DESTDIR)$(PREFIX)/share/doc/reckerd

clean:
	rm -rf .build $(STATIC_BUILD)
