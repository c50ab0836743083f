package onnx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
	"gorgonia.org/tensor"
)

// Session runs an arbitrary float32 ONNX graph as a function of named
// tensors: classifiers, feature extractors, encoders, VAE decoders, anything
// that is not an eps-prediction network (use Open for those). It is safe for
// concurrent use. Close releases it.
type Session struct {
	info SessionInfo
	sess *ort.DynamicAdvancedSession
	ins  map[string]int // input name -> position in info.Inputs
	outs map[string]int // output name -> position in info.Outputs

	mu     sync.RWMutex // read by Run, written by Close
	closed bool
}

// SessionInfo describes an opened Session.
type SessionInfo struct {
	// Path is the file the graph was opened from.
	Path string
	// Inputs and Outputs list the graph's inputs and outputs in graph order.
	Inputs, Outputs []TensorInfo
	// Providers lists the execution providers in priority order; the CPU
	// provider is always last.
	Providers []string
	// RuntimeVersion is the version of the loaded ONNX Runtime library.
	RuntimeVersion string
}

// OpenSession loads the ONNX graph at path with the same options as Open
// (library path, threads, execution providers and fallback; name options are
// ignored). Every input and output must be float32.
func OpenSession(path string, opts ...Option) (*Session, error) {
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
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("onnx: reading model: %w", err)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("onnx: model file %s is empty", path)
	}
	if err := InitRuntime(cfg.lib); err != nil {
		return nil, err
	}
	ins, outs, err := ort.GetInputOutputInfoWithONNXData(data)
	if err != nil {
		return nil, fmt.Errorf("onnx: %s is not a loadable ONNX model: %w", path, err)
	}
	si := SessionInfo{Path: path, RuntimeVersion: RuntimeVersion()}
	if si.Inputs, err = tensorInfos(ins); err != nil {
		return nil, err
	}
	if si.Outputs, err = tensorInfos(outs); err != nil {
		return nil, err
	}
	s := &Session{ins: map[string]int{}, outs: map[string]int{}}
	var inNames, outNames []string
	for i, ti := range si.Inputs {
		if ti.DType != Float32 {
			return nil, fmt.Errorf("onnx: %s: input %s is %s; OpenSession handles float32 graphs only", path, ti, ti.ONNXType)
		}
		s.ins[ti.Name] = i
		inNames = append(inNames, ti.Name)
	}
	for i, ti := range si.Outputs {
		if ti.DType != Float32 {
			return nil, fmt.Errorf("onnx: %s: output %s is %s; OpenSession handles float32 graphs only", path, ti, ti.ONNXType)
		}
		s.outs[ti.Name] = i
		outNames = append(outNames, ti.Name)
	}
	sess, providers, err := newSession(cfg, data, inNames, outNames)
	if err != nil {
		return nil, err
	}
	for _, p := range providers {
		si.Providers = append(si.Providers, p.name)
	}
	si.Providers = append(si.Providers, "CPUExecutionProvider")
	s.info, s.sess = si, sess
	return s, nil
}

// Info describes the graph's inputs and outputs and the providers in use.
func (s *Session) Info() SessionInfo {
	si := s.info
	si.Inputs = slices.Clone(si.Inputs)
	si.Outputs = slices.Clone(si.Outputs)
	si.Providers = slices.Clone(si.Providers)
	return si
}

// Run evaluates the graph. inputs must name every graph input; outputs names
// the outputs wanted (at least one), each a float32 tensor of the shape the
// graph produces, into which the result is written (dst-first: the caller
// owns and may reuse the buffers). Shapes are checked against the declared
// fixed dimensions before the call and by the runtime during it. ctx
// cancellation stops a running call.
func (s *Session) Run(ctx context.Context, inputs, outputs map[string]*tensor.Dense) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(outputs) == 0 {
		return errors.New("onnx: Run: no outputs requested")
	}
	inVals := make([]ort.Value, len(s.info.Inputs))
	outVals := make([]ort.Value, len(s.info.Outputs))
	defer func() {
		for _, v := range slices.Concat(inVals, outVals) {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	wrap := func(kind, name string, d *tensor.Dense, ti TensorInfo) (ort.Value, error) {
		if d == nil || d.Dtype() != tensor.Float32 {
			return nil, fmt.Errorf("onnx: %s %s: want a float32 tensor", kind, name)
		}
		shape := d.Shape()
		if len(shape) != len(ti.Dims) {
			return nil, fmt.Errorf("onnx: %s %s has shape %v, want rank %d (%s)", kind, name, []int(shape), len(ti.Dims), ti)
		}
		dims := make([]int64, len(shape))
		for i, n := range shape {
			if ti.Dims[i] > 0 && int64(n) != ti.Dims[i] {
				return nil, fmt.Errorf("onnx: %s %s has shape %v, want %s", kind, name, []int(shape), ti)
			}
			dims[i] = int64(n)
		}
		return ort.NewTensor(ort.NewShape(dims...), d.Float32s())
	}
	for name, d := range inputs {
		i, ok := s.ins[name]
		if !ok {
			return fmt.Errorf("onnx: Run: the graph has no input %q (inputs: %s)", name, names(s.info.Inputs))
		}
		v, err := wrap("input", name, d, s.info.Inputs[i])
		if err != nil {
			return err
		}
		inVals[i] = v
	}
	for i, v := range inVals {
		if v == nil {
			return fmt.Errorf("onnx: Run: input %s not given", s.info.Inputs[i])
		}
	}
	for name, d := range outputs {
		i, ok := s.outs[name]
		if !ok {
			return fmt.Errorf("onnx: Run: the graph has no output %q (outputs: %s)", name, names(s.info.Outputs))
		}
		v, err := wrap("output", name, d, s.info.Outputs[i])
		if err != nil {
			return err
		}
		outVals[i] = v
	}
	ro, err := ort.NewRunOptions()
	if err != nil {
		return fmt.Errorf("onnx: creating run options: %w", err)
	}
	defer ro.Destroy()
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { _ = ro.Terminate() })
		defer stop()
	}
	// Outputs that were not requested are allocated by the runtime (nil
	// entries) and destroyed by the deferred cleanup.
	if err := s.sess.RunWithOptions(inVals, outVals, ro); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("onnx: inference stopped: %w", cerr)
		}
		return fmt.Errorf("onnx: inference failed: %w", err)
	}
	return nil
}

// Close releases the session. Calls after Close return ErrClosed.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.sess.Destroy()
}
