# linegate — see README.md. Everything here needs only Go.
GO       ?= go
BIN      ?= bin/linegate
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo none)
DATE     ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS  := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Interop tests run when LINEGATE_INTEROP=1 (CI sets it; a missing peer then fails).
TESTFLAGS ?= -race -count=1 -timeout 15m
# Each fuzz target runs this long (CI: 5s). Minimizing a new interesting
# input is bounded too, or one slow minimization eats the whole budget.
FUZZTIME ?= 10s
FUZZ_TARGETS := ./configs:FuzzParse ./drivers/modbus:FuzzDecode ./drivers/opcua:FuzzVariant ./buffer:FuzzDecodeMessage ./uplink:FuzzAppendJSON
GOVULNCHECK ?= golang.org/x/vuln/cmd/govulncheck@v1.9.0

.PHONY: build test demo lint fuzz vulncheck clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/linegate

test:
	$(GO) test $(TESTFLAGS) ./...

demo:
	$(GO) run ./cmd/linegate demo

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# fuzz runs every fuzz target for FUZZTIME; a crasher is written to the
# package's testdata/fuzz/<Target>/ and fails the run.
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 100x $$pkg; \
	done

vulncheck:
	$(GO) run $(GOVULNCHECK) ./...

clean:
	rm -rf bin
