# imageapid: see README.md. `make run` and `make test` set everything up from nothing.
SHELL := /bin/bash
ARCH_DIR := linux_$(shell go env GOARCH)
TFLITE := $(CURDIR)/third_party/tflite
export CGO_CFLAGS := -I$(TFLITE)/include
export CGO_LDFLAGS := -L$(TFLITE)/$(ARCH_DIR) -Wl,-rpath,$(TFLITE)/$(ARCH_DIR)
CONFIG ?= configs/imageapid.yaml
BIN := bin/imageapid

.PHONY: deps models calibrate build run test bench vet fmt clean calibrate-verify eval

deps:
	./scripts/deps.sh

models: deps
	go run ./models/cmd/modelfetch -manifest models/manifest.json -out models/build

# calibrate rewrites the committed int8 activation ranges (models/calibration/int8)
# from face crops in ../shared/corpus; `make models` then needs no images.
calibrate: deps
	go run ./models/cmd/modelc calibrate -corpus ../shared/corpus

build: deps
	go build -o $(BIN) ./daemon

run: deps models build
	./$(BIN) -config $(CONFIG)

test: deps models
	go vet ./...
	go test -race -count=1 -timeout 25m ./...

bench: deps models
	go test -run '^$$' -bench . -benchtime 2s ./...

fmt:
	gofmt -w .

clean:
	rm -rf bin models/build
