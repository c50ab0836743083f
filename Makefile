# ugo: see README.md. `make test` is what CI runs.
SHELL := /bin/bash
GO ?= go
# scripts/ort.sh pins the version and links the library here.
ORT_LIB := $(CURDIR)/.cache/ort/libonnxruntime.so.1
export ONNXRUNTIME_SHARED_LIBRARY_PATH ?= $(ORT_LIB)

# Every package except onnx (and pipeline, superres, the test helper internal/ortest and the programs
# that use them) must build without cgo.
NOCGO_PKGS = $(shell $(GO) list ./... | grep -v -e '/onnx$$' -e '/pipeline$$' -e '/superres$$' -e '/internal/ortest$$' -e '/examples/') ./examples/gotrain

.PHONY: ort vulkan-debs gpu-check-bundle gpu-check data test fmtcheck tidycheck vet staticcheck nocgo gotest demo eval sweep video esrgan esrgan-goldens esrgan-eval fuzz fuzz-hostile

ort:
	@./scripts/ort.sh >/dev/null

# UpscalerJS's esrgan-slim super-resolution models (npm, MIT), converted to
# ONNX into testdata/models/ (committed; this re-creates them identically).
# esrgan-goldens also rewrites testdata/esrgan/; esrgan-eval prints PSNR and
# SSIM against bicubic on photographs and Fashion-MNIST (about 10 minutes).
esrgan:
	@./scripts/esrgan.sh
esrgan-goldens:
	@./scripts/esrgan.sh goldens
esrgan-eval: data
	@./scripts/esrgan.sh eval

# Debian's Vulkan loader and Mesa's Vulkan drivers as .deb files in
# .cache/vulkan/, for the onnx WebGPU tests (which skip the cases they need
# them for when absent: a failed download does not stop `make test`) and for
# scripts/gpu-check.sh.
vulkan-debs:
	-@./scripts/vulkan-debs.sh >/dev/null

# The prepared GPU check (scripts/gpu-check.sh): gpu-check-bundle writes what
# a GPU machine without Go, network or Vulkan loader needs beside the
# repository into .cache/gpu-check/ (under 64 MiB); gpu-check runs there
# (WebGPU against the CPU on the Fashion model, one table, under 8 minutes).
gpu-check-bundle: ort
	@./scripts/gpu-check.sh bundle
gpu-check:
	@./scripts/gpu-check.sh

# Fashion-MNIST (Debian's dataset-fashion-mnist), used by the tests of the
# shipped model and by the eval program.
FASHION_DIR := /usr/share/datasets/fashion-mnist
data:
	@test -f $(FASHION_DIR)/t10k-images-idx3-ubyte.gz || { \
		echo "data: installing dataset-fashion-mnist with apt-get" >&2; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null; }

fmtcheck:
	@gofmt="$$($(GO) env GOROOT)/bin/gofmt"; \
	files=$$("$$gofmt" -l $$(git ls-files '*.go')) || exit 1; \
	if [ -n "$$files" ]; then echo "gofmt needed:" $$files >&2; exit 1; fi

# go.mod and go.sum must be what `go mod tidy` makes of them.
tidycheck:
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod/go.sum are not tidy: run go mod tidy" >&2; $(GO) mod tidy -diff >&2; exit 1; }

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) tool staticcheck ./...

nocgo:
	CGO_ENABLED=0 $(GO) build $(NOCGO_PKGS)

gotest:
	$(GO) test -race -timeout 30m ./...

test: ort data vulkan-debs fmtcheck tidycheck vet staticcheck nocgo gotest

# The demo: samples the shipped Fashion-MNIST model at 28, 56 and 112 pixels,
# without and with Upsample Guidance, and the text-to-image latent model at 32
# and 64 pixels, into out/demo/.
demo: ort
	$(GO) run ./examples/fashion -out out/demo
	$(GO) run ./examples/latentdemo -out out/demo

# The quality table against a real high-resolution reference: the 14x14 model
# at 14, 28 and 56 against the real 28x28 test images, with bootstrap
# intervals (README). 44 minutes on 2 cores shared with other jobs (load
# average about 23); interrupted runs resume (results.jsonl).
eval: ort data
	$(GO) run ./examples/eval -out out/eval -steps 25 -n2x 300 -n4x 100 -crops 2

# The shipped 28x28 model's structural table (long: about an hour on 2 cores).
eval28: ort data
	$(GO) run ./examples/eval -protocol 28 -out out/eval28

# The rectified-flow model against the eps model at equal model calls
# (README; long on a shared machine: run it in the background).
.PHONY: evalflow
evalflow: ort data
	$(GO) run ./examples/eval -protocol 28 -flow testdata/models/fashion_flow_unet.onnx -steps 25 -n56 64 -n112 32 -batch 32 -out out/evalflow

# The latent-model table (examples/latenteval): FD and prompt accuracy of the
# text-to-image models in testdata/models at 32, 64 and 128 pixels, plain and
# guided, for several CFG scales (long: run it in the background).
.PHONY: latenteval
latenteval: ort data
	$(GO) run ./examples/latenteval -out out/latenteval

# Frechet distance vs sampling steps for each sampler with UG at 2x (about
# 25 minutes on 2 cores); the table in BENCHMARKS.md.
sweep: ort data
	$(GO) run ./examples/eval -protocol 28 -out out/sweep -n56 300 -n112 2 -sweep 10,20,30,50

# The video table (examples/video): the shipped video model at 8 and 16 frames
# of 28x28 and 56x56, plain and with Upsample Guidance over frames, pixels or
# both; per-frame FD, label changes across frames, frame differences against
# real clips, seconds per clip (about an hour on 2 shared cores).
video: ort data
	$(GO) run ./examples/video -out out/video -n 48 -n56 12

# Fuzzing beyond the seed corpora that `make test` runs: FUZZTIME per target.
FUZZTIME ?= 1m
fuzz: fuzz-clip fuzz-hostile

fuzz-clip:
	for f in FuzzParseVocab FuzzParseMerges FuzzParseTokenizerJSON FuzzParseSpecial FuzzParseAddedTokens FuzzEncode; do \
		$(GO) test ./pipeline/clip -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -parallel 1 || exit 1; done

# The file formats and flag sets ugo reads outside the tokenizer: scheduler
# and model-folder configs, saved noise-source states, convnet weights, IDX
# images, every example's flags. Each target also runs its seed corpus (the hostile inputs) in
# `make test`.
FUZZ_HOSTILE = ./schedule:FuzzParseConfig ./noise:FuzzUnmarshalState ./pipeline:FuzzReadConfigs ./graphmodel/convnet:FuzzRead \
	./examples/internal/fashion:FuzzReadIDXImages ./examples/fashion:FuzzParse ./examples/eval:FuzzParse \
	./examples/bench:FuzzParse ./examples/tilebench:FuzzParse ./examples/txt2img:FuzzParse ./examples/upscale:FuzzParse ./examples/gotrain:FuzzParse
fuzz-hostile:
	for t in $(FUZZ_HOSTILE); do \
		$(GO) test $${t%%:*} -run '^$$' -fuzz "^$${t##*:}$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s -parallel 1 || exit 1; done
