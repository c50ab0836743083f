package onnx

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"

	ort "github.com/yalue/onnxruntime_go"
)

// source is a model file prepared for a session by Open and OpenGraph: the
// options and the graph's declared inputs and outputs.
type source struct {
	cfg        *config
	path       string
	ins, outs  []TensorInfo
	runtimeVer string
	used       []provider // the GPU providers of the session newSession created
}

// prepare applies opts, checks the file at path (ONNX Runtime reads it
// itself, resolving external data relative to it), initialises the runtime
// and inspects the graph's inputs and outputs.
func prepare(path string, opts []Option) (*source, error) {
	cfg := &config{}
	for _, o := range opts {
		o(cfg)
	}
	if len(cfg.errs) > 0 {
		return nil, errors.Join(cfg.errs...)
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	src := &source{cfg: cfg, path: path}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("onnx: reading model: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("onnx: model path %s is a directory", path)
	}
	if st.Size() == 0 {
		return nil, fmt.Errorf("onnx: model file %s is empty", path)
	}
	if err := InitRuntime(cfg.lib); err != nil {
		return nil, err
	}
	ins, outs, err := ort.GetInputOutputInfo(path)
	if err != nil {
		return nil, fmt.Errorf("onnx: %s is not a loadable ONNX model: %w", path, err)
	}
	src.runtimeVer = RuntimeVersion()
	if src.ins, err = tensorInfos(ins); err != nil {
		return nil, err
	}
	if src.outs, err = tensorInfos(outs); err != nil {
		return nil, err
	}
	return src, nil
}

// newSession creates the session for the named inputs and outputs, applying
// the fallback policy to the requested providers. It returns the names of
// the providers actually used, the CPU provider last.
func (src *source) newSession(inputNames, outputNames []string) (*ort.DynamicAdvancedSession, []string, error) {
	cfg := src.cfg
	providers := slices.Clone(cfg.providers)
	for {
		so, err := sessionOptions(cfg, providers)
		var perr *ProviderError
		if errors.As(err, &perr) && cfg.fallback == FallbackCPU {
			cfg.logger.Warn("onnx: execution provider unavailable, falling back", "provider", perr.Provider, "error", perr.Err)
			providers = slices.DeleteFunc(providers, func(p provider) bool { return p.name == perr.Provider })
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		sess, err := ort.NewDynamicAdvancedSession(src.path, inputNames, outputNames, so)
		so.Destroy()
		if err != nil && len(providers) > 0 && cfg.fallback == FallbackCPU {
			cfg.logger.Warn("onnx: session creation failed with GPU providers, falling back to CPU", "error", err)
			providers = nil
			continue
		}
		if err != nil {
			if len(providers) > 0 {
				return nil, nil, &ProviderError{Provider: providers[0].name, Err: err}
			}
			return nil, nil, fmt.Errorf("onnx: creating session for %s: %w", src.path, err)
		}
		src.used = providers
		var used []string
		for _, p := range providers {
			used = append(used, p.name)
		}
		return sess, append(used, "CPUExecutionProvider"), nil
	}
}

// fillsCPU reports whether one call of a session with these settings and
// providers keeps every CPU core busy: it runs on the CPU provider alone,
// with the runtime's default intra-op pool (a thread per physical core) or
// at least as many intra-op threads as the machine has logical CPUs.
func fillsCPU(c *config, providers []string) bool {
	if len(providers) != 1 || providers[0] != "CPUExecutionProvider" {
		return false
	}
	return !c.threadsSet || c.intra == 0 || c.intra >= runtime.NumCPU()
}

// graphInfo returns the GraphInfo of src before its session exists.
func (src *source) graphInfo() GraphInfo {
	return GraphInfo{Path: src.path, Inputs: src.ins, Outputs: src.outs, RuntimeVersion: src.runtimeVer}
}

// openModel is Open: it assigns the input and output roles and creates the
// Model's session.
func openModel(path string, opts []Option) (*Model, error) {
	src, err := prepare(path, opts)
	if err != nil {
		return nil, err
	}
	mi := ModelInfo{Path: path, RuntimeVersion: src.runtimeVer, Inputs: src.ins, Outputs: src.outs, SpatialMultiple: src.cfg.multiple, FrameMultiple: src.cfg.frames}
	if err := assignRoles(&mi, src.cfg); err != nil {
		return nil, fmt.Errorf("%w (model %s)", err, path)
	}
	inputNames := []string{mi.Sample.Name, mi.Timestep.Name}
	for _, e := range mi.Extra {
		inputNames = append(inputNames, e.Name)
	}
	sess, providers, err := src.newSession(inputNames, []string{mi.Output.Name})
	if err != nil {
		return nil, err
	}
	mi.Providers = providers

	m := &Model{info: mi, sess: sess, shapes: newShapeSessions(src, inputNames, []string{mi.Output.Name}), extraIx: map[string]int{}, cache: map[bindKey][]*binding{}, fills: fillsCPU(src.cfg, providers), observe: src.cfg.observe}
	for i, e := range mi.Extra {
		m.extraIx[e.Name] = i
	}
	m.root = &Bound{m: m, id: 0, values: make([]*boundValue, len(mi.Extra))}
	return m, nil
}
