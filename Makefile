# reckerd: `make run` builds and starts the daemon in the foreground; `make test` runs
# every test against a real daemon and real upstreams on loopback. Both install missing
# Debian packages first (as root; otherwise they print the command to run): `make run` and
# `make install` only what building needs, `make test` and `make bench` what they use too.
# Nothing here starts, stops, enables or disables a service but reckerd's own uninstall.

SWIFT ?= swift
PREFIX ?= /usr/local
CONFIG ?= config/reckerd.json
FUZZ_SECONDS ?= 60

.PHONY: all deps test-deps build release run test fuzz bench static install uninstall deb clean systemd-test

all: build

# libcurl 8.14 is linked into every binary from bookworm-backports' archive, fetched into
# .build-curl without installing anything (scripts/fetch-libcurl.sh, docs/LIBCURL.md).
deps:
	@scripts/install-deps.sh
	@scripts/fetch-libcurl.sh

test-deps:
	@scripts/install-deps.sh test
	@scripts/fetch-libcurl.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

run: release
	.build/release/reckerd --config $(CONFIG)

# The XCTest suite in TEST_WORKERS parallel workers, one test class each (scripts/run-tests.py;
# the classes share nothing: each starts its own daemons and upstreams). Beside it, the fuzz
# corpus is replayed and the decoder and the HTTP reader fuzzed for FUZZ_SECONDS (its output
# follows the tests'). Either failing fails the target.
TEST_WORKERS ?= 4
test: test-deps
	@scripts/check-purity.sh
	$(SWIFT) build --build-tests
	@scripts/fuzz.sh $(FUZZ_SECONDS) > .build/fuzz.log 2>&1 & fuzz=$$!; \
	RECKER_BIN_DIR="$$($(SWIFT) build --show-bin-path)" /usr/bin/python3 scripts/run-tests.py --workers $(TEST_WORKERS); tests=$$?; \
	wait $$fuzz; fuzzed=$$?; cat .build/fuzz.log; \
	[ $$tests = 0 ] && [ $$fuzzed = 0 ]

# The protocol decoder under libFuzzer for FUZZ_SECONDS (scripts/fuzz.sh).
fuzz: test-deps
	scripts/fuzz.sh $(FUZZ_SECONDS)

# Benchmarks W1-W8 (bench/bench.py; W6 also measures the static build `make install` uses): writes docs/BENCHMARKS.md and docs/benchmarks.png; then
# the soak (bench/soak.py: 1,000,000 requests) and the HTTP front (bench/http_front.py) append
# their sections; then 10 minutes of fuzzing
# the decoder and 5 minutes of random frames from many connections against a live daemon;
# then the .deb under a real systemd in a VM (make systemd-test: about 4 minutes under TCG).
bench: release
	@scripts/install-deps.sh test hyperfine:hyperfine wrk:wrk python3-matplotlib
	$(SWIFT) build -c release --static-swift-stdlib --scratch-path $(STATIC_BUILD) --product reckerd
	scripts/fetch-libcurl.sh bench
	/usr/bin/python3 bench/bench.py
	/usr/bin/python3 bench/libcurl_cpu.py --append docs/BENCHMARKS.md
	/usr/bin/python3 bench/soak.py
	/usr/bin/python3 bench/http_front.py --append docs/BENCHMARKS.md
	/usr/bin/python3 bench/domain_rounds.py .build/release
	/usr/bin/python3 bench/client_churn.py .build/release
	scripts/fuzz.sh 600
	$(SWIFT) build --build-tests
	RECKER_LIVE_FUZZ_SECONDS=300 RECKER_BIN_DIR="$$($(SWIFT) build --show-bin-path)" \
	  $(SWIFT) test --skip-build --disable-swift-testing --filter LiveFuzzTests
	$(MAKE) deb
	scripts/systemd-test.sh

# Binaries with the Swift runtime linked in (the host needs no Swift). `sudo make install`
# in a checkout that belongs to a user builds as that user, never as root inside it.
STATIC_BUILD = .build-static
INSTALL_BIN ?= $(STATIC_BUILD)/release
OWNER := $(shell stat -c %U .)
static: deps
	@if [ "$$(id -u)" = 0 ] && [ "$(OWNER)" != root ]; then \
	  echo "building as $(OWNER), who owns this checkout"; \
	  runuser -u $(OWNER) -- env HOME="$$(getent passwd $(OWNER) | cut -d: -f6)" PATH="$$PATH" \
	    $(SWIFT) build -c release --static-swift-stdlib --scratch-path $(STATIC_BUILD); \
	else \
	  $(SWIFT) build -c release --static-swift-stdlib --scratch-path $(STATIC_BUILD); \
	fi

# The binaries, the default config (kept if one exists), the systemd units, and the
# sysusers.d entry for the `reckerd` group that may use the socket. With DESTDIR (a staging
# tree) nothing on this host changes but that tree. INSTALL_BIN= names binaries built elsewhere.
install: $(if $(filter $(STATIC_BUILD)/release,$(INSTALL_BIN)),static,deps)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/etc/reckerd $(DESTDIR)/etc/systemd/system \
	  $(DESTDIR)$(PREFIX)/share/doc/reckerd $(DESTDIR)/usr/lib/sysusers.d
	install -m 0755 $(INSTALL_BIN)/reckerd $(INSTALL_BIN)/recker $(INSTALL_BIN)/recker-direct $(DESTDIR)$(PREFIX)/bin/
	[ -e $(DESTDIR)/etc/reckerd/reckerd.json ] || install -m 0644 config/reckerd.json $(DESTDIR)/etc/reckerd/reckerd.json
	install -m 0644 deploy/systemd/reckerd.service deploy/systemd/reckerd.socket deploy/systemd/reckerd-http.socket $(DESTDIR)/etc/systemd/system/
	install -m 0644 deploy/sysusers.d/reckerd.conf $(DESTDIR)/usr/lib/sysusers.d/reckerd.conf
	install -m 0644 README.md docs/PROTOCOL.md docs/HTTP-FRONT.md $(DESTDIR)$(PREFIX)/share/doc/reckerd/
	@if [ -z "$(DESTDIR)" ]; then \
	  if command -v systemd-sysusers >/dev/null 2>&1; then systemd-sysusers /usr/lib/sysusers.d/reckerd.conf; \
	  else getent group reckerd >/dev/null || groupadd --system reckerd; fi; \
	  if command -v systemctl >/dev/null 2>&1; then systemctl daemon-reload 2>/dev/null || true; fi; \
	fi

# dist/reckerd_VERSION_amd64.deb from the same static build (INSTALL_BIN= as for install), with
# debhelper in a copy under dist/ (scripts/make-deb.sh); scripts/check-deb.sh FILE checks it.
deb: $(if $(filter $(STATIC_BUILD)/release,$(INSTALL_BIN)),static,)
	INSTALL_BIN=$(INSTALL_BIN) scripts/make-deb.sh

# The .deb under a real systemd 252 in a QEMU VM with no network device (systemd as PID 1
# only there; nothing is mounted on this host): install, socket activation, access group,
# reload, restart, watchdog, sandbox, journal, remove and purge (scripts/systemd-test.sh;
# the newest dist/*.deb, `make deb` first if there is none; the Debian image is cached in .build-vm/).
systemd-test:
	scripts/systemd-test.sh

uninstall:
	-systemctl disable --now reckerd-http.socket reckerd.socket reckerd.service 2>/dev/null
	rm -f $(DESTDIR)$(PREFIX)/bin/reckerd $(DESTDIR)$(PREFIX)/bin/recker $(DESTDIR)$(PREFIX)/bin/recker-direct
	rm -f $(DESTDIR)/etc/systemd/system/reckerd.service $(DESTDIR)/etc/systemd/system/reckerd.socket \
	  $(DESTDIR)/etc/systemd/system/reckerd-http.socket
	rm -f $(DESTDIR)/usr/lib/sysusers.d/reckerd.conf
	rm -rf $(DESTDIR)$(PREFIX)/share/doc/reckerd
	-systemctl daemon-reload 2>/dev/null
	@echo "left in place: /etc/reckerd (your config) and the reckerd group; to remove them: rm -r /etc/reckerd; groupdel reckerd"

clean:
	rm -rf .build $(STATIC_BUILD) .build-fuzz .build-curl
