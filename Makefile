# ugo: see README.md. `make test` is what CI runs.
SHELL := /bin/bash
GO ?= go
ORT_LIB := $(CURDIR)/.cache/ort/1.30.0/libonnxruntime.so.1
export ONNXRUNTIME_SHARED_LIBRARY_PATH ?= $(ORT_LIB)

# Every package except onnx (and the programs that use it) must build without cgo.
NOCGO_PKGS = $(shell $(GO) list ./... | grep -v -e '/onnx$$' -e '/examples/')

.PHONY: ort test vet staticcheck nocgo gotest

ort:
	@./scripts/ort.sh >/dev/null

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) tool staticcheck ./...

nocgo:
	CGO_ENABLED=0 $(GO) build $(NOCGO_PKGS)

gotest:
	$(GO) test -race -timeout 30m ./...

test: ort vet staticcheck nocgo gotest
