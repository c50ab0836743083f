package onnx

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"

	ort "github.com/yalue/onnxruntime_go"
)

// source is a model file prepared for a session by the Open functions: the
// options, the graph's declared inputs and outputs and, when the file was
// read into memory, its bytes.
type source struct {
	cfg        *config
	path       string
	data       []byte // nil: ONNX Runtime reads path itself
	ins, outs  []TensorInfo
	runtimeVer string
}

// prepare applies opts, checks the file at path (reading it into memory when
// readBytes is set, for Open and OpenSession; otherwise ONNX Runtime reads
// it, resolving external data relative to it), initialises the runtime and
// inspects the graph's inputs and outputs.
func prepare(path string, opts []Option, readBytes bool) (*source, error) {
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
	if readBytes {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("onnx: reading model: %w", err)
		}
		if len(data) == 0 {
			return nil, fmt.Errorf("onnx: model file %s is empty", path)
		}
		src.data = data
	} else {
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
	}
	if err := InitRuntime(cfg.lib); err != nil {
		return nil, err
	}
	var ins, outs []ort.InputOutputInfo
	var err error
	if src.data != nil {
		ins, outs, err = ort.GetInputOutputInfoWithONNXData(src.data)
	} else {
		ins, outs, err = ort.GetInputOutputInfo(path)
	}
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
		var sess *ort.DynamicAdvancedSession
		if src.data != nil {
			sess, err = ort.NewDynamicAdvancedSessionWithONNXData(src.data, inputNames, outputNames, so)
		} else {
			sess, err = ort.NewDynamicAdvancedSession(src.path, inputNames, outputNames, so)
		}
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
			if src.data != nil {
				return nil, nil, fmt.Errorf("onnx: creating session: %w", err)
			}
			return nil, nil, fmt.Errorf("onnx: creating session for %s: %w", src.path, err)
		}
		var used []string
		for _, p := range providers {
			used = append(used, p.name)
		}
		return sess, append(used, "CPUExecutionProvider"), nil
	}
}

// sessionInfo returns the SessionInfo of src before its session exists.
func (src *source) sessionInfo() SessionInfo {
	return SessionInfo{Path: src.path, Inputs: src.ins, Outputs: src.outs, RuntimeVersion: src.runtimeVer}
}

// openModel is Open (readBytes) and OpenFile: it assigns the input and
// output roles and creates the Model's session.
func openModel(path string, opts []Option, readBytes bool) (*Model, error) {
	src, err := prepare(path, opts, readBytes)
	if err != nil {
		return nil, err
	}
	mi := ModelInfo{Path: path, RuntimeVersion: src.runtimeVer, Inputs: src.ins, Outputs: src.outs, SpatialMultiple: src.cfg.multiple}
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

	m := &Model{info: mi, sess: sess, extraIx: map[string]int{}, cache: map[bindKey][]*binding{}}
	for i, e := range mi.Extra {
		m.extraIx[e.Name] = i
	}
	m.root = &Bound{m: m, id: 0, values: make([]*boundValue, len(mi.Extra))}
	return m, nil
}
