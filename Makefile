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

.PHONY: build test demo lint fuzz clean

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

clean:
	rm -rf bin
