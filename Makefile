# imageapid: see README.md. `make run` and `make test` set everything up from nothing.
SHELL := /bin/bash
ARCH_DIR := linux_$(shell go env GOARCH)
TFLITE := $(CURDIR)/third_party/tflite
export CGO_CFLAGS := -I$(TFLITE)/include
export CGO_LDFLAGS := -L$(TFLITE)/$(ARCH_DIR) -Wl,-rpath,$(TFLITE)/$(ARCH_DIR)
CONFIG ?= configs/imageapid.yaml
BIN := bin/imageapid

.PHONY: deps models build run test bench vet fmt clean

deps:
	./scripts/deps.sh

models: deps
	go run ./models/cmd/modelfetch -manifest models/manifest.json -out models/build

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
