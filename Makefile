# reckerd: `make run` builds and starts the daemon in the foreground; `make test` runs
# every test against a real daemon and real upstreams on loopback. Both install missing
# Debian packages first (as root; otherwise they print the command to run).

SWIFT ?= swift
PREFIX ?= /usr/local
CONFIG ?= config/reckerd.json

.PHONY: all deps build release run test clean

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

clean:
	rm -rf .build
