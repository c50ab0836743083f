package onnx

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"

	ort "github.com/yalue/onnxruntime_go"
)

// Option configures Open and OpenGraph. The options that name a
// denoiser's inputs and output (WithInputNames, WithOutputName) and
// WithSpatialMultiple apply to Open only; WithOutputs applies to OpenGraph
// only; each constructor ignores the other's.
type Option func(*config)

// Fallback is the policy applied when a requested execution provider (CUDA,
// TensorRT, WebGPU) cannot be used.
type Fallback int

const (
	// FallbackFail makes Open return an error wrapping ErrProviderUnavailable.
	// It is the default: asking for a GPU and silently getting a CPU is
	// rarely what a caller wants.
	FallbackFail Fallback = iota
	// FallbackCPU drops the unavailable provider, logs a warning through
	// log/slog and continues on the remaining providers (at least the CPU).
	FallbackCPU
)

// String returns "fail" or "cpu".
func (f Fallback) String() string {
	if f == FallbackCPU {
		return "cpu"
	}
	return "fail"
}

// ErrProviderUnavailable is wrapped by the error Open returns when an
// execution provider cannot be appended (for example CUDA with the CPU-only
// ONNX Runtime build) under FallbackFail.
var ErrProviderUnavailable = errors.New("execution provider unavailable")

type provider struct {
	name    string // ORT provider name, e.g. CUDAExecutionProvider
	kind    string // "cuda", "tensorrt" or "webgpu"
	options map[string]string
}

type config struct {
	lib          string
	xName, tName string
	outName      string
	intra, inter int
	threadsSet   bool
	providers    []provider
	fallback     Fallback
	logger       *slog.Logger
	multiple     int
	frames       int
	outputs      []string // OpenGraph's session outputs; nil: all
	tune         tuning
	shapeMax     int // WithShapeSessions; 0: none
	observe      func(RunTiming)
	errs         []error
}

// WithSpatialMultiple declares that the model takes only samples whose
// spatial axes H and W are multiples of n, as a U-net with k downsampling
// stages needs multiples of 2^k (8 for Stable Diffusion's UNet on latents).
// ModelInfo.CheckShape and PredictNoise then refuse other sizes with a
// *ugo.ShapeError before the call, instead of the runtime failing inside
// the graph (a *RunError). n must be at least 1. The frame axis F of a
// video model is not a spatial axis: see WithFrameMultiple.
func WithSpatialMultiple(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.errs = append(c.errs, fmt.Errorf("onnx: WithSpatialMultiple(%d): want at least 1", n))
			return
		}
		c.multiple = n
	}
}

// WithFrameMultiple declares that a video model (samples N, C, F, H, W)
// takes only frame counts F that are multiples of n, as a network that
// pools its frames by 2 k times needs multiples of 2^k. A network whose
// temporal layers never change the frame count (temporal convolutions and
// attention) takes any F and needs no such declaration. Other frame counts
// are then refused with a *ugo.ShapeError before the call. n must be at
// least 1; the option has no effect on rank-4 models.
func WithFrameMultiple(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.errs = append(c.errs, fmt.Errorf("onnx: WithFrameMultiple(%d): want at least 1", n))
			return
		}
		c.frames = n
	}
}

// WithLibraryPath loads the ONNX Runtime shared library from path instead of
// searching the environment and the system (see InitRuntime). It only has
// an effect on the first Open (or InitRuntime) of the process; naming a
// different library later is an error.
func WithLibraryPath(path string) Option {
	return func(c *config) { c.lib = path }
}

// WithInputNames names the sample input (x) and the timestep input (t),
// overriding detection. An empty string keeps detection for that input.
func WithInputNames(x, t string) Option {
	return func(c *config) { c.xName, c.tName = x, t }
}

// WithOutputName names the predicted-noise output, overriding detection.
func WithOutputName(name string) Option {
	return func(c *config) { c.outName = name }
}

// WithOutputs restricts the session OpenGraph creates to the named outputs
// (all of them when none is named): ONNX Runtime then computes only what
// these need, and Graph.Run can request only them. Use it when a graph has
// outputs that are not wanted, such as a text encoder's pooler_output next
// to last_hidden_state: an output that is not requested in a Run call is
// allocated by the runtime, which onnxruntime_go cannot do for float16
// outputs. Open ignores it.
func WithOutputs(names ...string) Option {
	return func(c *config) { c.outputs = append(c.outputs, names...) }
}

// MaxThreads bounds the thread counts of WithThreads: ONNX Runtime starts
// every thread of its pools when the session is created.
const MaxThreads = 4096

// WithThreads sets ONNX Runtime's intra-op thread count (threads used inside
// one operator, such as a convolution) and inter-op thread count (threads
// running independent operators in parallel; ONNX Runtime only uses it in
// parallel execution mode, which this option enables when inter > 1). Zero
// keeps ONNX Runtime's default for that count (one thread per physical core
// for intra-op). Negative values and values above MaxThreads make Open
// fail.
func WithThreads(intra, inter int) Option {
	return func(c *config) {
		if intra < 0 || inter < 0 || intra > MaxThreads || inter > MaxThreads {
			c.errs = append(c.errs, fmt.Errorf("onnx: WithThreads(%d, %d): thread counts must be 0 to %d", intra, inter, MaxThreads))
			return
		}
		c.intra, c.inter, c.threadsSet = intra, inter, true
	}
}

// WithCUDA asks for the CUDA execution provider on GPU deviceID, with extra
// provider options (keys as documented at
// https://onnxruntime.ai/docs/execution-providers/CUDA-ExecutionProvider.html,
// for example "gpu_mem_limit", "cudnn_conv_algo_search",
// "arena_extend_strategy"). The "device_id" key is set from deviceID. It
// needs a GPU build of ONNX Runtime; see the package documentation. What
// happens when CUDA is unavailable is set by WithFallback.
func WithCUDA(deviceID int, options map[string]string) Option {
	return withGPU("WithCUDA", "CUDAExecutionProvider", "cuda", deviceID, options)
}

// WithTensorRT asks for the TensorRT execution provider on GPU deviceID,
// with extra provider options (keys as documented at
// https://onnxruntime.ai/docs/execution-providers/TensorRT-ExecutionProvider.html,
// for example "trt_fp16_enable", "trt_engine_cache_enable",
// "trt_engine_cache_path"). Give WithCUDA as well (after WithTensorRT) so
// that nodes TensorRT cannot take run on CUDA rather than the CPU. Providers
// are tried in the order of the options.
func WithTensorRT(deviceID int, options map[string]string) Option {
	return withGPU("WithTensorRT", "TensorrtExecutionProvider", "tensorrt", deviceID, options)
}

// withGPU is the Option of a GPU execution provider on deviceID: a copy of
// options with "device_id" set, or an error of the option fn for a negative
// id.
func withGPU(fn, name, kind string, deviceID int, options map[string]string) Option {
	return func(c *config) {
		if deviceID < 0 {
			c.errs = append(c.errs, fmt.Errorf("onnx: %s: device id %d is negative", fn, deviceID))
			return
		}
		o := maps.Clone(options)
		if o == nil {
			o = map[string]string{}
		}
		o["device_id"] = strconv.Itoa(deviceID)
		c.providers = append(c.providers, provider{name: name, kind: kind, options: o})
	}
}

// WithFallback sets the policy for a requested execution provider that
// cannot be used. The default is FallbackFail.
func WithFallback(f Fallback) Option {
	return func(c *config) {
		if f != FallbackFail && f != FallbackCPU {
			c.errs = append(c.errs, fmt.Errorf("onnx: WithFallback: unknown policy %d", int(f)))
			return
		}
		c.fallback = f
	}
}

// WithLogger sets the logger for warnings (such as a provider fallback). The
// default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// ProviderError reports an execution provider that could not be set up. It
// wraps ErrProviderUnavailable and the runtime's own error.
type ProviderError struct {
	// Provider is the ONNX Runtime provider name, e.g. "CUDAExecutionProvider".
	Provider string
	// Err is the error ONNX Runtime returned.
	Err error
	// Hint says what to install or check, when the cause could be narrowed
	// down (for WebGPU: whether the Vulkan loader could be loaded). Empty
	// when nothing more specific than the package documentation is known.
	Hint string
}

// Error implements error.
func (e *ProviderError) Error() string {
	hint := e.Hint
	if hint == "" && e.Provider == WebGPUProvider {
		hint = "WebGPU needs a GPU with a Vulkan driver and the Vulkan loader; see the package documentation"
	} else if hint == "" {
		hint = "a GPU provider needs a GPU build of ONNX Runtime, " +
			"its provider library next to libonnxruntime, and matching CUDA/cuDNN; see the package documentation"
	}
	return fmt.Sprintf("onnx: %s unavailable: %v (%s; or use WithFallback(FallbackCPU))", e.Provider, e.Err, hint)
}

// Unwrap returns ErrProviderUnavailable and the runtime's error.
func (e *ProviderError) Unwrap() []error { return []error{ErrProviderUnavailable, e.Err} }

// sessionOptions builds session options with the given providers. It
// returns a *ProviderError naming the first provider that failed.
func sessionOptions(c *config, providers []provider) (*ort.SessionOptions, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("onnx: creating session options: %w", err)
	}
	fail := func(err error) (*ort.SessionOptions, error) {
		so.Destroy()
		return nil, err
	}
	if c.threadsSet {
		if c.intra > 0 {
			if err := so.SetIntraOpNumThreads(c.intra); err != nil {
				return fail(fmt.Errorf("onnx: setting intra-op threads: %w", err))
			}
		}
		if c.inter > 0 {
			if err := so.SetInterOpNumThreads(c.inter); err != nil {
				return fail(fmt.Errorf("onnx: setting inter-op threads: %w", err))
			}
			if c.inter > 1 {
				if err := so.SetExecutionMode(ort.ExecutionModeParallel); err != nil {
					return fail(fmt.Errorf("onnx: setting parallel execution: %w", err))
				}
			}
		}
	}
	if c.spinningOff() {
		if err := so.AddSessionConfigEntry(spinningKey, "0"); err != nil {
			return fail(fmt.Errorf("onnx: session config %s=0: %w", spinningKey, err))
		}
	}
	if err := c.tune.apply(so); err != nil {
		return fail(err)
	}
	for _, p := range providers {
		if err := appendProvider(so, p); err != nil {
			pe := &ProviderError{Provider: p.name, Err: err}
			if p.kind == "webgpu" {
				pe.Hint = webGPUHint()
			}
			return fail(pe)
		}
	}
	return so, nil
}

func appendProvider(so *ort.SessionOptions, p provider) error {
	switch p.kind {
	case "cuda":
		o, err := ort.NewCUDAProviderOptions()
		if err != nil {
			return err
		}
		defer o.Destroy()
		if err := o.Update(p.options); err != nil {
			return err
		}
		return so.AppendExecutionProviderCUDA(o)
	case "tensorrt":
		o, err := ort.NewTensorRTProviderOptions()
		if err != nil {
			return err
		}
		defer o.Destroy()
		if err := o.Update(p.options); err != nil {
			return err
		}
		return so.AppendExecutionProviderTensorRT(o)
	case "webgpu":
		return so.AppendExecutionProvider("WebGPU", p.options)
	}
	return fmt.Errorf("unknown provider kind %q", p.kind)
}

// spinningOff reports whether sessions are created with intra-op spinning
// off although the options do not say so: under WithShapeSessions, where
// each shape-specialised session has its own intra-op pool and a pool whose
// workers spin after its call keeps cores busy while the next call, in
// another session, runs.
func (c *config) spinningOff() bool {
	return c.shapeMax > 0 && !c.tune.sets(spinningKey)
}
