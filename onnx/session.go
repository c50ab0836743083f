package onnx

import (
	"context"
	"errors"
	"fmt"
	"reflect"
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
	namedSession
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
	src, err := prepare(path, opts, true)
	if err != nil {
		return nil, err
	}
	si := src.sessionInfo()
	for _, ti := range si.Inputs {
		if ti.DType != Float32 {
			return nil, fmt.Errorf("onnx: %s: input %s is %s; OpenSession handles float32 graphs only", path, ti, ti.ONNXType)
		}
	}
	for _, ti := range si.Outputs {
		if ti.DType != Float32 {
			return nil, fmt.Errorf("onnx: %s: output %s is %s; OpenSession handles float32 graphs only", path, ti, ti.ONNXType)
		}
	}
	s := &Session{}
	if err := s.open(src, si); err != nil {
		return nil, err
	}
	return s, nil
}

// Info describes the graph's inputs and outputs and the providers in use.
func (s *Session) Info() SessionInfo {
	if s == nil {
		return SessionInfo{}
	}
	return s.infoCopy()
}

// Run evaluates the graph. inputs must name every graph input; outputs names
// the outputs wanted (at least one), each a float32 tensor of the shape the
// graph produces, into which the result is written (dst-first: the caller
// owns and may reuse the buffers). Shapes are checked against the declared
// fixed dimensions before the call and by the runtime during it. ctx
// cancellation stops a running call.
func (s *Session) Run(ctx context.Context, inputs, outputs map[string]*tensor.Dense) error {
	if s == nil {
		return errNil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.ready(ctx, outputs); err != nil {
		return err
	}
	inVals := make([]ort.Value, len(s.info.Inputs))
	outVals := make([]ort.Value, len(s.info.Outputs))
	defer destroyValues(inVals, outVals)
	wrap := func(kind, name string, d *tensor.Dense, ti TensorInfo) (ort.Value, error) {
		if err := checkArg(kind, name, d); err != nil {
			return nil, err
		}
		if d.Dtype() != tensor.Float32 {
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
		i, err := s.inputIndex(name)
		if err != nil {
			return err
		}
		v, err := wrap("input", name, d, s.info.Inputs[i])
		if err != nil {
			return err
		}
		inVals[i] = v
	}
	if err := s.allInputs(inVals); err != nil {
		return err
	}
	for name, d := range outputs {
		i, err := s.outputIndex(name)
		if err != nil {
			return err
		}
		v, err := wrap("output", name, d, s.info.Outputs[i])
		if err != nil {
			return err
		}
		outVals[i] = v
	}
	// Outputs that were not requested are allocated by the runtime (nil
	// entries) and destroyed by the deferred cleanup.
	return s.run(ctx, inVals, outVals, func(err error) error {
		return &RunError{Model: s.info.Path, Inputs: describeInputs(inputs), Err: err}
	})
}

// Close releases the session. Calls after Close return ErrClosed.
func (s *Session) Close() error {
	if s == nil {
		return nil
	}
	return s.close()
}

// namedSession is what Session and Graph share: a session over named
// inputs and outputs, and the bookkeeping of their Run calls.
type namedSession struct {
	info SessionInfo
	sess *ort.DynamicAdvancedSession
	ins  map[string]int // input name -> position in info.Inputs
	outs map[string]int // output name -> position in info.Outputs

	mu     sync.RWMutex // read by Run, written by Close
	closed bool
}

// open creates the session of src for the inputs and outputs of si.
func (ns *namedSession) open(src *source, si SessionInfo) error {
	ns.ins, ns.outs = map[string]int{}, map[string]int{}
	var inNames, outNames []string
	for i, ti := range si.Inputs {
		ns.ins[ti.Name] = i
		inNames = append(inNames, ti.Name)
	}
	for i, ti := range si.Outputs {
		ns.outs[ti.Name] = i
		outNames = append(outNames, ti.Name)
	}
	sess, providers, err := src.newSession(inNames, outNames)
	if err != nil {
		return err
	}
	si.Providers = providers
	ns.info, ns.sess = si, sess
	return nil
}

func (ns *namedSession) infoCopy() SessionInfo {
	si := ns.info
	si.Inputs = slices.Clone(si.Inputs)
	si.Outputs = slices.Clone(si.Outputs)
	si.Providers = slices.Clone(si.Providers)
	return si
}

// ready checks, with ns.mu held for reading, that a Run call may start.
func (ns *namedSession) ready(ctx context.Context, outputs map[string]*tensor.Dense) error {
	if ns.closed {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(outputs) == 0 {
		return errors.New("onnx: Run: no outputs requested")
	}
	return nil
}

// inputIndex returns the position of the input name.
func (ns *namedSession) inputIndex(name string) (int, error) {
	i, ok := ns.ins[name]
	if !ok {
		return 0, fmt.Errorf("onnx: Run: the graph has no input %q (inputs: %s)", name, names(ns.info.Inputs))
	}
	return i, nil
}

// outputIndex returns the position of the output name.
func (ns *namedSession) outputIndex(name string) (int, error) {
	i, ok := ns.outs[name]
	if !ok {
		return 0, fmt.Errorf("onnx: Run: the graph has no output %q (outputs: %s)", name, names(ns.info.Outputs))
	}
	return i, nil
}

// allInputs reports the first input without a value.
func (ns *namedSession) allInputs(inVals []ort.Value) error {
	for i, v := range inVals {
		if v == nil {
			return fmt.Errorf("onnx: Run: input %s not given", ns.info.Inputs[i])
		}
	}
	return nil
}

// run runs the session with run options that ctx cancellation terminates.
// When the call fails, the error wraps ctx.Err() if ctx stopped it, and is
// fail(the runtime's error) otherwise.
func (ns *namedSession) run(ctx context.Context, inVals, outVals []ort.Value, fail func(error) error) error {
	ro, err := ort.NewRunOptions()
	if err != nil {
		return fmt.Errorf("onnx: creating run options: %w", err)
	}
	defer ro.Destroy()
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { _ = ro.Terminate() })
		defer stop()
	}
	if err := ns.sess.RunWithOptions(inVals, outVals, ro); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("onnx: inference stopped: %w", cerr)
		}
		return fail(err)
	}
	return nil
}

func (ns *namedSession) close() error {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if ns.closed {
		return nil
	}
	ns.closed = true
	return ns.sess.Destroy()
}

// destroyValues destroys the values of a Run call. A binding may leave a
// typed nil in an output it failed to allocate.
func destroyValues(lists ...[]ort.Value) {
	for _, vals := range lists {
		for _, v := range vals {
			if v != nil && !reflect.ValueOf(v).IsNil() {
				v.Destroy()
			}
		}
	}
}
