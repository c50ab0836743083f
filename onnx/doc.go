// Package onnx runs diffusion models exported to ONNX on ONNX Runtime, as
// ugo.Denoiser values.
//
// It is ugo's only cgo package, built on github.com/yalue/onnxruntime_go,
// which loads the ONNX Runtime shared library at run time. A small C shim
// here (not built on Windows) creates rank-0 tensors through ONNX Runtime's
// C API: float16 ones, which the binding cannot create, and scalar
// timesteps of every type that are rewritten in place call after call.
//
// # Opening a model
//
// Open loads a model file and returns a *Model, a ugo.Denoiser:
//
//	m, err := onnx.Open("unet.onnx", onnx.WithThreads(4, 1))
//	if err != nil { ... }
//	defer m.Close()
//	err = m.PredictNoise(ctx, eps, x, []float32{999})
//
// Open inspects the graph. The sample input is found by name (x, sample,
// x_t, latent, ...), the timestep input too (t, timestep, timesteps), and the
// output (eps, out_sample, noise_pred, or the only output); WithInputNames
// and WithOutputName override that. Model.Info reports the names, element
// types and dimensions, which dimensions are fixed and which dynamic
// (ModelInfo.DynamicBatch, ModelInfo.DynamicSize), and ModelInfo.CheckShape
// says whether a given sample shape fits. Asking a fixed-size model for
// another resolution is a *ugo.ShapeError naming the fixed dimension.
//
// # Video models
//
// A sample input of rank 5 is a video model's: N, C, F, H, W, frames on
// axis 2 (the layout of diffusers' video UNets and of ugo's N,C,F,H,W
// tensors). Such a model takes rank-5 samples only (a rank-4 one is a
// *ugo.ShapeError, and so is a rank-5 sample for an image model), its
// output has the sample's shape, and ModelInfo.DynamicFrames says whether
// it takes any frame count; a fixed F is checked like a fixed H. The
// timestep is one per clip (N of them), as for images.
// WithSpatialMultiple constrains H and W only; WithFrameMultiple constrains
// F, for networks that pool over frames. Upsample Guidance with a frame
// factor (guidance.UpsampleOptions Factors [2, 1, 1] or [2, 2, 2]) calls
// the model at F/2 frames, so a video model for it must take both counts.
//
// OpenGraph loads any other graph (text encoder, VAE, classifier) as a
// *Graph, a function of named tensors; WithOutputs restricts it to the
// outputs wanted. Both let ONNX Runtime read the file, so weights stored as
// external data beside it load.
//
// # Element types
//
// The sample and output may be float32 or float16; float16 models get their
// inputs converted at the boundary (github.com/x448/float16, round to
// nearest even) and their outputs converted back, so callers always see
// float32. The timestep may be float32, float16, float64, int64 or int32,
// shaped [N] (one per batch element), [1] or a scalar (one for the whole
// call: all timesteps of a call must then be equal). Integer timesteps are
// rounded to the nearest integer, ties to even, as torch.round does: the
// fractional times Upsample Guidance asks for are then quantised, which
// matches the "nearest" time-adjustment mode of the public implementations.
// Every timestep form real exporters write loads and runs: int64 [N]
// (diffusers' conversion script of 2022, optimum up to 1.23), float32 [N]
// (diffusers' script since November 2022), and rank-0 float32 or float16
// (optimum from 1.24; float16 for its float16 exports).
//
// A value the input's type cannot hold is refused, before anything runs,
// with a *RangeError: a timestep beyond int64 or int32 for an
// integer-timestep model, a timestep or sample value from 65520 up in
// magnitude (which rounds to infinity) for a float16 model, and likewise for
// the values given to Model.With and Graph.Run. Such an input is not
// converted to something else, and is not reported as a non-finite model
// output.
//
// # Extra inputs and classifier-free guidance
//
// Inputs besides the sample and timestep (diffusers' encoder_hidden_states,
// class labels, added conditions) are bound with Model.With, which returns
// a *Bound denoiser feeding a fixed value on every call. Bound denoisers
// share their model's session. A value with batch 1 is repeated over the
// sample's batch. BatchedCFG combines a conditional and an unconditional
// Bound of one model into one denoiser that runs both in a single session
// call on a doubled batch, as diffusers' pipelines do.
//
// # Performance and concurrency
//
// A Model is safe for concurrent use: ONNX Runtime's session runs calls in
// parallel, and each call takes its own pre-allocated set of input, output
// and run-option values from a cache keyed by shape, so a steady-state call
// allocates no tensors (only the few bytes the binding allocates per run).
// Inputs are copied into the cached tensors, which also means a call never
// retains the caller's x. WithThreads sets ONNX Runtime's intra-op and
// inter-op thread counts. Model.FillsCPU (ugo.CPUFiller) reports whether
// one call keeps every core busy (the CPU provider with a thread per
// CPU), so that guidance middleware runs its two calls per step one after
// the other rather than at once.
//
// # Profiling and session tuning
//
// WithProfiling records ONNX Runtime's own trace of every operator call;
// ReadProfile and ProfileSummary turn it into operator shares and the
// session overhead (the share of a call outside every operator), and
// examples/ortprof prints them for the shipped models.
// WithGraphOptimization, WithOptimizedModelPath, WithSpinning and
// WithSessionConfig change how the runtime prepares and schedules the
// graph, not what it computes.
//
// # Shape-specialised sessions
//
// Exporters give a model dynamic axes (batch, H, W, sequence length), and
// the graph then computes every reshape target at run time: the Fashion
// UNet runs 238 nodes per call, the latent UNet 721, about 330 of them
// Shape, Gather, Unsqueeze, Concat and Reshape. Each node costs the runtime
// a few microseconds whatever its size, which weighs on small calls (the
// low-resolution call of Upsample Guidance, a latent UNet at its training
// size). WithShapeSessions(max) lets a Model or Graph open, on the first
// call with each new set of input shapes, a session over a copy of the
// model whose input dimensions are fixed to those shapes; ONNX Runtime
// then folds the shape arithmetic when it creates the session: 182 nodes
// for the Fashion UNet, 457 for the latent UNet, 65 instead of 105 for the
// latent text encoder. The copy is made in memory by rewriting the
// inputs' dimensions in the ONNX protobuf (ONNX Runtime's free-dimension
// overrides, which do the same, are not reachable through onnxruntime_go).
// At most max such sessions are created; calls with other shapes run in
// the dynamic session, and none is evicted, so a sampling loop never
// rebuilds one. Each costs a copy of the weights in memory and its
// creation time on the first call of its shape, and its own intra-op
// thread pool (created with spinning off, so that pools do not take cores
// from each other). Measured on 2 cores: 4-9% faster for the latent
// pipeline with one thread; with two threads and alternating shapes, up to
// 12% slower. Model.ShapeSessions and Graph.ShapeSessions list them.
//
// Outputs equal the dynamic session's within float32 rounding, not bit
// for bit: knowing the shapes, the runtime also fuses more (residual Adds
// into its NCHWc convolutions at OptimizeAll, MatMul and Add into Gemm),
// which changes the order of some float32 sums. On the shipped models the
// largest difference is 7e-7 relative; the UNets and the VAE decoder are
// bit-identical at OptimizeExtended. Calls of one shape always run in the
// same session and give the same result.
//
// # Cancellation
//
// Cancelling the context of a running call sets the
// terminate flag of its run options (RunOptions.Terminate): ONNX Runtime
// stops between operators and PredictNoise returns an error wrapping
// ctx.Err().
//
// # Errors
//
// Bad input is an error, never a panic:
//
//   - *ugo.ShapeError: a sample the model cannot take (rank, channels, a
//     fixed dimension, a size WithSpatialMultiple or WithFrameMultiple
//     excludes, a lazily
//     transposed view);
//   - ugo.ErrAlias: dst sharing memory with x;
//   - *RangeError: a timestep, sample or bound value that the input's
//     element type cannot hold (beyond int64 or int32, or 65520 and up in
//     magnitude for float16), refused before anything runs;
//   - ErrNonFinite (which is ugo.ErrNonFinite, so sampler.ErrNonFinite too):
//     a NaN or infinite model output or CFG combination;
//   - ErrClosed: a call on a closed model; the methods of a nil *Model,
//     *Bound, *CFG or *Graph (what a failed Open returns) return
//     an error wrapping both ErrClosed and ugo.ErrNilDenoiser, and their
//     Close returns nil;
//   - *RunError: ONNX Runtime failed inside the graph (a size its dynamic
//     axes admit but its operators do not), with the runtime's message, the
//     model and the sample shape;
//   - *LibraryError: no usable ONNX Runtime library; *ProviderError
//     (ErrProviderUnavailable): an execution provider that cannot be used;
//   - ctx.Err(), wrapped, when the context ended a call.
//
// # The ONNX Runtime library
//
// InitRuntime (called by Open) loads the library once per process: from
// WithLibraryPath when given, else from the ONNXRUNTIME_SHARED_LIBRARY_PATH
// environment variable, else from the usual system names and paths. The
// library must be ONNX Runtime 1.29 or newer. In the ugo repository, `make
// ort` fetches the Linux x64 CPU build that scripts/ort.sh pins (from the npm
// package onnxruntime-node), links it as .cache/ort/libonnxruntime.so.1, and
// `make test` points the environment variable at it. When no library is found, the error (a
// *LibraryError) lists every path tried.
//
// # GPUs
//
// WithCUDA(deviceID, options), WithTensorRT(deviceID, options) and
// WithWebGPU(options) append the CUDA, TensorRT and WebGPU execution
// providers; WithFallback chooses what happens when they cannot be used:
// FallbackFail (the default) makes Open fail with a *ProviderError wrapping
// ErrProviderUnavailable, FallbackCPU logs a warning through log/slog and
// runs on the CPU. Model.Info().Providers says which providers the session
// has. Device and ParseDevice turn a command-line name ("cpu", "cuda:1",
// "tensorrt", "webgpu") into these options.
//
// WebGPU is the GPU path that needs no CUDA. The Linux x64 library that
// `make ort` fetches contains ONNX Runtime's WebGPU provider with Dawn, which
// drives the GPU through Vulkan; a user installs only the Vulkan loader
// (libvulkan.so.1: Debian and Ubuntu package libvulkan1) and the GPU's
// Vulkan driver (NVIDIA's proprietary driver includes one and registers its
// ICD file, nvidia_icd.json; AMD and Intel GPUs use Mesa's RADV and ANV). The
// loader finds drivers through their ICD files in /usr/share/vulkan/icd.d
// and /etc/vulkan/icd.d, or through VK_DRIVER_FILES. Whatever is missing,
// ONNX Runtime reports only "Failed to get a WebGPU adapter: No supported
// adapters" (Dawn prints the detail on standard error: "Couldn't load
// Vulkan" without the loader, "Found no drivers" from a loader without a
// driver, the missing feature for a driver Dawn rejects, such as Debian 12's
// lavapipe software driver); the *ProviderError's Hint says whether the
// loader could be loaded. Nothing in this package has been measured on a
// GPU yet: scripts/gpu-check.sh is a prepared check that compares WebGPU
// with the CPU and times both on a Linux machine with an NVIDIA GPU.
//
// The CPU build fetched by `make ort` has no CUDA or TensorRT providers:
// asking it for CUDA fails with ONNX Runtime's "Failed to load library
// .../libonnxruntime_providers_shared.so" (or falls back, under
// FallbackCPU). For CUDA, use an official GPU release of ONNX Runtime >= 1.29
// from https://github.com/microsoft/onnxruntime/releases: the Linux asset is
// onnxruntime-linux-x64-gpu-<version>.tgz (named
// onnxruntime-linux-x64-gpu_cuda12-<version>.tgz in some releases), the
// Windows one onnxruntime-win-x64-gpu-<version>.zip. Its lib/ directory
// holds libonnxruntime.so together with the provider libraries
// libonnxruntime_providers_shared.so, libonnxruntime_providers_cuda.so and
// libonnxruntime_providers_tensorrt.so, which must stay next to it (ONNX
// Runtime loads them from the directory of libonnxruntime.so); point
// WithLibraryPath or ONNXRUNTIME_SHARED_LIBRARY_PATH at that
// lib/libonnxruntime.so. Since ONNX Runtime 1.19 the GPU packages are built
// against CUDA 12.x and cuDNN 9.x (any CUDA 12 minor version works; cuDNN 8
// does not); the requirements table at
// https://onnxruntime.ai/docs/execution-providers/CUDA-ExecutionProvider.html#requirements
// is authoritative for a given release. The CUDA runtime, cuBLAS, cuFFT,
// cuRAND and cuDNN libraries must be on the loader path (LD_LIBRARY_PATH on
// Linux, PATH on Windows) with an NVIDIA driver new enough for CUDA 12;
// TensorRT additionally needs the TensorRT 10 libraries (libnvinfer) the
// release was built with. Provider options are strings, as in ONNX Runtime's
// C API (for example "gpu_mem_limit", "cudnn_conv_algo_search",
// "trt_fp16_enable", "trt_engine_cache_enable").
//
// Caveat: the CUDA provider installs its own signal handlers, replacing Go's
// (onnxruntime_go issue 140); a crash inside CUDA may then not produce a Go
// traceback.
package onnx
