# imageapid: see README.md. `make run` and `make test` set everything up from nothing.
SHELL := /bin/bash
ARCH_DIR := linux_$(shell go env GOARCH)
TFLITE := $(CURDIR)/third_party/tflite
export CGO_CFLAGS := -I$(TFLITE)/include
export CGO_LDFLAGS := -L$(TFLITE)/$(ARCH_DIR) -Wl,-rpath,$(TFLITE)/$(ARCH_DIR)
CONFIG ?= configs/imageapid.yaml
BIN := bin/imageapid

.PHONY: train deps models calibrate build run test bench vet fmt clean calibrate-verify eval fuzz loadtest peer

deps:
	./scripts/deps.sh

models: deps
	go run ./models/cmd/modelfetch -manifest models/manifest.json -out models/build
	go run ./fitting/cmd/heads build

# calibrate rewrites the committed int8 activation ranges (models/calibration/int8)
# from the face pipeline's aligned crops of ../shared/corpus photos, then
# rebuilds the compiled models and records their sha256 and int8 gates in the
# manifest (commit both); `make models` then needs no images.
calibrate: deps models
	go run ./fitting/cmd/calibrate -corpus ../shared/corpus
	go run ./models/cmd/modelc build -update

build: deps
	go build -o $(BIN) ./daemon

run: deps models build
	./$(BIN) -config $(CONFIG)

test: deps models
	go vet ./...
	go test -race -count=1 -timeout 25m ./...

# fuzz runs each fuzz target for FUZZTIME (plain `go test` runs only their
# committed seeds, under testdata/fuzz/<target>); a crasher is written there
# and fails the run. FUZZ_TARGETS=./pkg:FuzzName picks some.
FUZZTIME ?= 30s
FUZZ_TARGETS ?= ./daemon/api:FuzzSampleJSON ./daemon/api:FuzzMultipart ./daemon/api:FuzzBase64 \
	./estimators:FuzzDecodeImage ./estimators:FuzzObjectBox ./estimators/facetemplate:FuzzTemplateDecode \
	./daemon/config:FuzzParse ./daemon/mqtt:FuzzOutboxLoad ./models:FuzzManifest
fuzz: deps models
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; echo "== $$name in $$pkg for $(FUZZTIME)"; \
		go test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

# loadtest offers 20x the fitter's sustainable rate for 60 s and prints the
# answers, the admitted requests' p99 and the peak RSS; SOAK=30m runs the
# steady mixed load instead and prints the RSS every minute. Not in `make test`.
LOADTEST_ARGS ?=
loadtest: build models
	go run ./internal/cmd/loadtest -bin $(BIN) $(if $(SOAK),-soak $(SOAK)) $(LOADTEST_ARGS)

# peer installs Human 3.3.6 on TF.js WASM (exact versions) into third_party/peer
# for BenchmarkPeerHuman, which measures it beside the chain benchmarks.
peer:
	./scripts/peer.sh

bench: deps models peer
	go test -run '^$$' -bench . -benchtime 2s ./...

# Re-measure the verify-matcher's error-rate table on ../shared/corpus (commit the result).
calibrate-verify: deps models
	go run ./fitting/cmd/calibrate-verify --corpus ../shared/corpus
	go run ./fitting/cmd/calibrate-verify --corpus ../shared/corpus --flip

# Re-fit the attribute heads (models/heads/*.json) on ../shared/corpus, deterministically,
# and rewrite their manifest entries (commit both).
train: deps models
	go run ./fitting/cmd/heads train --corpus ../shared/corpus
	go run ./fitting/cmd/heads build -update

# Print the estimators' figures on ../shared/testdata, the liveness services'
# heads per corpus source, each source held out of their fit in turn, the
# sessions' passive head per held-out corpus source (and the
# passive_threshold read from it), the kiosk sessions' decisions on ../shared/kiosk, identification
# on corpus/identities and the people trackers' MOT metrics on
# ../shared/tracking (evaluation only).
eval: deps models
	go run ./estimators/cmd/eval --data ../shared/testdata
	go run ./fitting/cmd/heads liveness-sources --corpus ../shared/corpus -heads liveness_texture,liveness_deep
	go run ./fitting/cmd/heads passive-threshold --corpus ../shared/corpus
	go run ./sessions/cmd/kioskeval --kiosk ../shared/kiosk
	go run ./watchlist/cmd/identeval --corpus ../shared/corpus
	go run ./camera/cmd/moteval --data ../shared/tracking --every 1,4

fmt:
	gofmt -w .

clean:
	rm -rf bin models/build

# ---- Installing and packaging (see README "Install on an edge box") ----
VERSION ?= 0.1.0+git$(shell git rev-parse --short HEAD 2>/dev/null || echo 0)
PREFIX ?= /usr
DESTDIR ?=
SYSCONFDIR ?= /etc
UNITDIR ?= /lib/systemd/system
DIST ?= dist
NATIVE_ARCH := $(shell go env GOARCH)
INSTALL_ENV = DESTDIR=$(DESTDIR) PREFIX=$(PREFIX) SYSCONFDIR=$(SYSCONFDIR) UNITDIR=$(UNITDIR)

.PHONY: build-installed install uninstall deb build-arm64 sysroot-arm64 test-arm64 deb-arm64

# The installed binary finds TFLite (and delegate libraries dropped beside
# it) in $(PREFIX)/lib/imageapid through its run path.
build-installed: deps
	CGO_LDFLAGS="-L$(TFLITE)/$(ARCH_DIR) -Wl,-rpath,$(PREFIX)/lib/imageapid" \
		go build -trimpath -ldflags "-X main.version=$(VERSION)" -o bin/$(ARCH_DIR)/imageapid ./daemon

install: build-installed models
	$(INSTALL_ENV) ARCH=$(NATIVE_ARCH) BIN=bin/$(ARCH_DIR)/imageapid ./scripts/install-tree.sh install

uninstall:
	$(INSTALL_ENV) ARCH=$(NATIVE_ARCH) ./scripts/install-tree.sh uninstall

deb: build-installed models
	VERSION=$(VERSION) ARCH=$(NATIVE_ARCH) BIN=bin/$(ARCH_DIR)/imageapid OUT=$(DIST) ./scripts/deb.sh

# ---- arm64: cross build against a sysroot of Debian's arm64 packages ----
SYSROOT := $(CURDIR)/third_party/sysroot-arm64
ARM64_LIBDIRS := $(SYSROOT)/usr/lib/aarch64-linux-gnu $(SYSROOT)/lib/aarch64-linux-gnu $(SYSROOT)/usr/lib
# pkg-config reads only the sysroot's opencv4.pc (PKG_CONFIG_LIBDIR, written
# by sysroot-arm64.sh) and prefixes its paths with the sysroot; -rpath-link
# lets the linker find the OpenCV libraries' own dependencies there.
ARM64_ENV = CGO_ENABLED=1 GOOS=linux GOARCH=arm64 CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ \
	PKG_CONFIG_SYSROOT_DIR=$(SYSROOT) PKG_CONFIG_LIBDIR=$(SYSROOT)/usr/lib/aarch64-linux-gnu/pkgconfig \
	CGO_CFLAGS="-I$(TFLITE)/include" \
	CGO_LDFLAGS="-L$(TFLITE)/linux_arm64 $(addprefix -Wl$(comma)-rpath-link$(comma),$(ARM64_LIBDIRS)) -Wl,-rpath,$(ARM64_RPATH)"
comma := ,
ARM64_RPATH ?= $(PREFIX)/lib/imageapid

sysroot-arm64:
	./scripts/sysroot-arm64.sh $(SYSROOT)

build-arm64: deps sysroot-arm64
	$(ARM64_ENV) go build -trimpath -ldflags "-X main.version=$(VERSION)" -o bin/linux_arm64/imageapid ./daemon
	file bin/linux_arm64/imageapid

deb-arm64: build-arm64 models
	VERSION=$(VERSION) ARCH=arm64 BIN=bin/linux_arm64/imageapid OUT=$(DIST) SYSROOT=$(SYSROOT) ./scripts/deb.sh

# Runs the arm64 daemon under qemu-aarch64 on real images and compares its
# JSON with the amd64 build's (see scripts/test-arm64.sh). Not part of `make
# test`: the sysroot is a few hundred MB of downloads.
test-arm64: build-arm64 build-installed models
	./scripts/test-arm64.sh $(SYSROOT) bin/linux_arm64/imageapid bin/$(ARCH_DIR)/imageapid
