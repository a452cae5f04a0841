# popper: the README's two commands are `make demo` and `make test`.
#
#   make            build popper, popper.apop (the apop-only build) and popauth (release)
#   make install    install them under PREFIX (default /usr/local); make uninstall
#   make deb        a Debian package of them (target/debian/popper_VERSION_ARCH.deb)
#   make demo       run popper under a real inetd on 127.0.0.1:1110 with a demo user
#   make test       install what the tests need, then lint, unit and end-to-end tests
#   make lint       rustfmt and clippy only
#   make fuzz       every fuzz target for FUZZ_SECONDS (120) each
#   make bench      popper against popa3d and Dovecot, side by side (bench/RESULTS.md)
#   make bench-update  what an update costs on a 1 GB mailbox, next to qpopper 2.53's copies
#
# Every target installs the Debian packages it needs (scripts/setup.sh) and is
# safe to run again.

CARGO ?= cargo
SHELL := /bin/bash

.PHONY: all build install uninstall deb bench fuzz demo test lint unit e2e bench-update setup-build setup-demo setup-test clean

all: build

setup-build:
	@scripts/setup.sh build
setup-demo:
	@scripts/setup.sh demo
setup-test:
	@scripts/setup.sh test

PREFIX ?= /usr/local
export PREFIX

# popper.apop is copied then renamed: a concurrent make install or make deb
# never reads half a file. (A comment inside a recipe would be echoed.)
build: setup-build
	$(CARGO) build --release --locked -p popper -p popauth
	$(CARGO) build --release --locked -p popper --features apop-only --target-dir target/apop-only
	cp target/apop-only/release/popper target/release/.popper.apop.$$$$ && mv -f target/release/.popper.apop.$$$$ target/release/popper.apop

install: build
	scripts/install.sh install

uninstall:
	scripts/install.sh uninstall

deb: build
	scripts/deb.sh

demo: setup-demo build
	scripts/demo.sh

# The fuzz targets are a workspace of their own: linted here too, so that
# they keep compiling against popper's API (make fuzz runs them).
lint: setup-build
	$(CARGO) fmt --all --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml --check
	$(CARGO) clippy --locked --manifest-path fuzz/Cargo.toml --all-targets -- -D warnings

# The feature matrix: default, without bulletins, and apop-only.
unit: setup-build
	$(CARGO) test --locked -p pop3-core -p popper -p popauth
	$(CARGO) test --locked -p popper --no-default-features
	$(CARGO) test --locked -p popper --features apop-only

e2e: setup-test
	$(CARGO) test --locked -p popper-e2e -- --test-threads 8

test: setup-test lint unit e2e

bench:
	bench/peers.sh
	bench/proxy.sh

fuzz: setup-build
	scripts/fuzz.sh

bench-update: setup-test
	bench/update.sh

clean:
	$(CARGO) clean
