# The two commands of the README:
#   make run    the API and a worker, against PostgreSQL and Redis
#   make test   the whole test suite
# Each first makes sure the PostgreSQL and Redis of its own settings are
# reachable (scripts/services.sh starts local ones where they are not):
# make run those of DATABASE_URL and REDIS_URL, make test those of
# TEST_DATABASE_URL and TEST_REDIS_URL.

GO ?= go

.PHONY: run test test-fast check-cc check-promtool services services-run services-test services-down build migrate vet staticcheck e2e-hurl fuzz

run: services-run
	./scripts/run.sh

test: check-cc check-promtool services-test vet staticcheck
	$(GO) test -race -count=1 -timeout 20m ./...

# go test -race needs cgo, so a C compiler. Without one Go quietly turns
# cgo off, and -race then fails naming neither; this names both, first.
check-cc:
	@cc=$$($(GO) env CC); command -v "$${cc%% *}" >/dev/null || { \
		echo "make test needs a C compiler: $$cc is not installed (go test -race needs cgo); install it with: sudo apt-get install -y gcc" >&2; exit 1; }
	@[ "$$($(GO) env CGO_ENABLED)" = 1 ] || { \
		echo "make test needs cgo (go test -race), but CGO_ENABLED is 0: unset it, or set CGO_ENABLED=1" >&2; exit 1; }

# deploy/'s tests run promtool on the Prometheus rules, and skip without
# it; make test does not let them skip. As root on Debian it installs the
# package that has it; elsewhere it names it.
check-promtool:
	@command -v promtool >/dev/null || ! command -v apt-get >/dev/null || [ "$$(id -u 2>/dev/null)" != 0 ] || { \
		echo "make test: installing promtool (apt-get install -y prometheus)" >&2; \
		apt-get install -y -qq prometheus >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq prometheus >/dev/null; }; }
	@command -v promtool >/dev/null || { \
		echo "make test needs promtool, to check and test deploy/prometheus/rules.yml: it is not installed; install it with: sudo apt-get install -y prometheus" >&2; exit 1; }

# The fast tier: the tests that need neither PostgreSQL nor Redis (the
# others skip under -short; make test never passes it). Under 30 s warm.
test-fast:
	$(GO) test -short -count=1 -timeout 2m ./...

# Both sets of settings.
services:
	./scripts/services.sh up

services-run:
	./scripts/services.sh up run

services-test:
	./scripts/services.sh up test

services-down:
	./scripts/services.sh down

# VERSION and REVISION (the commit) are stamped into both programs, for
# messageapi_build_info; go build would stamp the commit too, but not
# with -buildvcs=false. make build VERSION=1.4.0 names a release.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X messageapi/cmd/internal/daemon.Version=$(VERSION) -X messageapi/cmd/internal/daemon.Revision=$(REVISION)

build:
	mkdir -p bin
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/api ./cmd/api
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/worker ./cmd/worker

migrate: services-run
	$(GO) run ./cmd/api migrate

vet:
	$(GO) vet ./...

# staticcheck is a tool dependency in go.mod: go tool builds the pinned
# version.
staticcheck:
	$(GO) tool staticcheck ./...

# Runs e2e.hurl (Hurl 5.0.0 or newer) against freshly built programs on an
# empty schema of the test database; see scripts/e2e-hurl.sh.
e2e-hurl:
	./scripts/e2e-hurl.sh

# A short run of every fuzz target (not part of make test; their seeds are).
FUZZTIME ?= 20s
fuzz: services-test
	$(GO) test -run '^$$' -fuzz '^FuzzCreateMessage$$' -fuzztime $(FUZZTIME) ./cmd/api
	$(GO) test -run '^$$' -fuzz '^FuzzAddReaction$$' -fuzztime $(FUZZTIME) ./cmd/api
	$(GO) test -run '^$$' -fuzz '^FuzzListMessages$$' -fuzztime $(FUZZTIME) ./cmd/api
	$(GO) test -run '^$$' -fuzz '^FuzzListReactions$$' -fuzztime $(FUZZTIME) ./cmd/api
	$(GO) test -run '^$$' -fuzz '^FuzzCursors$$' -fuzztime $(FUZZTIME) ./query
