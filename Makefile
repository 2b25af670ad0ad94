# linegate — see README.md. Everything here needs only Go.
GO       ?= go
BIN      ?= bin/linegate
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo none)
DATE     ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS  := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Interop tests run when LINEGATE_INTEROP=1 (CI sets it; a missing peer then fails).
# -p 1: packages one after another; the interop tests start many processes
# (20 gateways, brokers, Chromium) and a second package beside them starves
# their peers on a 2-core machine.
TESTFLAGS ?= -race -count=1 -p 1 -timeout 15m
# Each fuzz target runs this long (CI: 5s). Minimizing a new interesting
# input is bounded too, or one slow minimization eats the whole budget.
FUZZTIME ?= 10s
FUZZ_TARGETS := ./configs:FuzzParse ./collector:FuzzEmit ./drivers/modbus:FuzzDecode ./drivers/opcua:FuzzVariant ./drivers/opcua:FuzzPublished ./buffer:FuzzDecodeMessage ./buffer:FuzzCheckPages ./uplink:FuzzAppendJSON ./uplink:FuzzSparkplugNCMD ./commands:FuzzParseCommand ./cmd/internal/tagimport:FuzzParse
GOVULNCHECK ?= golang.org/x/vuln/cmd/govulncheck@v1.9.0

.PHONY: build test demo lint fuzz bench bench-100k bench-telegraf vulncheck proto dist clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/linegate

test:
	$(GO) test $(TESTFLAGS) ./...

# demo runs the built binary, not "go run": Ctrl-C then reaches linegate
# alone, which stops cleanly, instead of the go command, which reports the
# interrupted child as a failure to make ("make: *** ... Error 1").
demo: build
	@$(BIN) demo $(DEMOFLAGS)

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

# bench runs the micro-benchmarks, then the end-to-end load run
# (cmd/linegate-bench: sims → linegate → mosquitto → subscriber, the
# practical limit, the load targets; cmd/linegate-bench/README.md); results
# also go to bench.json.
# Needs mosquitto. E.g. make bench BENCHFLAGS="--devices 10 --duration 15s --outage 10s"
BENCHTIME  ?= 200ms
BENCHFLAGS ?=
bench: build
	@mkdir -p bin
	$(GO) test -run XXX -bench . -benchmem -benchtime $(BENCHTIME) ./buffer/ ./uplink/ ./drivers/modbus/ ./collector/ | tee bin/gobench.txt
	$(GO) build -o bin/linegate-bench ./cmd/linegate-bench
	bin/linegate-bench --linegate $(BIN) --gobench bin/gobench.txt --json bench.json $(BENCHFLAGS)

# bench-100k checks the footprint at 100,000 tags: 400 devices × 250 tags at
# 1 s for 30 s, no outage, rate run or limit (≤ 25 % of one core, ≤ 100 MiB
# peak RSS); about 2 minutes. Results in bin/bench-100k.json.
bench-100k: build
	@mkdir -p bin
	$(GO) build -o bin/linegate-bench ./cmd/linegate-bench
	bin/linegate-bench --linegate $(BIN) --json bin/bench-100k.json --devices 400 --tags 250 --duration 30s --outage 0 --rate 0 --limit-duration 0 $(BENCHFLAGS)

# bench-telegraf runs linegate and Telegraf side by side: the same
# sims and Mosquitto, A B A B for 1×1, 10×20 and 100×100 uint16 holding
# registers at 1 s, QoS 1; ratios and /proc figures, results in
# bin/bench-telegraf.json. Builds Telegraf into bin/ once (needs the Go module
# proxy; ~40 s), needs mosquitto and strace. About 12 minutes; e.g.
# make bench-telegraf TELEGRAFFLAGS="--pairs 3 --window 60s --loads 10x20"
TELEGRAF_VERSION ?= v1.39.3
TELEGRAFFLAGS    ?=
bench-telegraf: build
	@mkdir -p bin
	@if [ ! -x bin/telegraf ]; then \
		echo "building Telegraf $(TELEGRAF_VERSION) into bin/ (once)"; \
		GOBIN=$$(pwd)/bin $(GO) install -tags "custom,inputs.modbus,outputs.mqtt,serializers.json" github.com/influxdata/telegraf/cmd/telegraf@$(TELEGRAF_VERSION); \
	fi
	$(GO) build -o bin/linegate-bench ./cmd/linegate-bench
	bin/linegate-bench --telegraf bin/telegraf --linegate $(BIN) --json bin/bench-telegraf.json $(TELEGRAFFLAGS)

# vulncheck uses the Go vulnerability database as the Go module proxy serves
# it (golang.org/x/vulndb, pinned), so it works where vuln.go.dev cannot be
# reached; .ci/vulncheck.py fails on a called finding in a module and lists
# the standard-library ones, which only a newer Go toolchain fixes.
VULNDB_VERSION ?= v0.0.0-20261105234957-e22db6528018
vulncheck:
	@mkdir -p bin
	$(GO) mod download golang.org/x/vulndb@$(VULNDB_VERSION)
	rm -rf bin/vulndb
	$(GO) run golang.org/x/vulndb/cmd/indexdb@$(VULNDB_VERSION) -vulns "$$($(GO) env GOMODCACHE)/golang.org/x/vulndb@$(VULNDB_VERSION)/data/osv" -out bin/vulndb
	$(GO) run $(GOVULNCHECK) -db file://$(CURDIR)/bin/vulndb -format json ./... > bin/govulncheck.json || true
	python3 .ci/vulncheck.py bin/govulncheck.json

# proto regenerates uplink/sparkplugb/sparkplug_b.pb.go (committed) from the
# Sparkplug B schema; needs protoc (Debian: protobuf-compiler) and
# go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12 on PATH.
proto:
	cd uplink/sparkplugb && protoc --proto_path=. --go_out=. --go_opt=paths=source_relative sparkplug_b.proto

# dist cross-builds static binaries (no cgo) for the line PCs, stamped with
# version, commit and date, with SHA256SUMS; prints each size.
DIST_TARGETS := linux/amd64 linux/arm64 linux/arm/7 windows/amd64
dist:
	@set -e; rm -rf dist; mkdir -p dist; for t in $(DIST_TARGETS); do \
		os=$$(echo $$t | cut -d/ -f1); arch=$$(echo $$t | cut -d/ -f2); arm=$$(echo $$t | cut -d/ -f3); \
		out=dist/linegate-$$os-$$arch$${arm:+v$$arm}; [ $$os = windows ] && out=$$out.exe; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch GOARM=$$arm $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $$out ./cmd/linegate; \
	done
	@cd dist && sha256sum linegate-* > SHA256SUMS
	@ls -l dist | awk 'NR>1 {printf "%-32s %6.1f MiB\n", $$9, $$5/1048576}'

clean:
	rm -rf bin dist
