# Vitrine: `make demo` to try it, `make test` to check it.
SWIFT ?= swift
PORT ?= 8080
ADMIN_PORT ?= 8081

.PHONY: demo test fuzz build release bench clean deps

## demo: build in release mode and start the demo (origin + proxy on 127.0.0.1:$(PORT), admin on :$(ADMIN_PORT))
demo: release
	.build/release/vitrine demo --port $(PORT) --admin-port $(ADMIN_PORT)

## test: start throwaway Redis and Postgres on free loopback ports, run every test, stop them
test:
	@scripts/install-deps.sh test
	@scripts/run-tests.sh

## fuzz: every libFuzzer target (Fuzz/Sources) for FUZZ_SECONDS each (default 60), from the committed seed corpus
fuzz:
	@scripts/install-deps.sh build
	@FUZZ_SECONDS=$(or $(FUZZ_SECONDS),60) scripts/fuzz.sh

## bench: release build, Vitrine next to nginx and Varnish (../shared/bench/peers.sh) and the load generator; regenerates docs/PERFORMANCE.md
bench:
	@scripts/install-deps.sh bench
	@scripts/bench.sh

build:
	@scripts/install-deps.sh build
	$(SWIFT) build

release:
	@scripts/install-deps.sh build
	$(SWIFT) build -c release --product vitrine

clean:
	rm -rf .build .build-*
