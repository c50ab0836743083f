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

// GraphInfo describes an opened Graph.
type GraphInfo struct {
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

// namedSession is the session of a Graph: a session over named
// inputs and outputs, and the bookkeeping of their Run calls.
type namedSession struct {
	info    GraphInfo
	sess    *ort.DynamicAdvancedSession
	shapes  *shapeSessions // WithShapeSessions; nil without
	path    string
	observe func(RunTiming) // WithRunObserver; nil without
	ins     map[string]int  // input name -> position in info.Inputs
	outs    map[string]int  // output name -> position in info.Outputs

	mu     sync.RWMutex // read by Run, written by Close
	closed bool
}

// open creates the session of src for the inputs and outputs of si.
func (ns *namedSession) open(src *source, si GraphInfo) error {
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
	ns.shapes = newShapeSessions(src, inNames, outNames)
	ns.path, ns.observe = src.path, src.cfg.observe
	return nil
}

func (ns *namedSession) infoCopy() GraphInfo {
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

// run runs the session with run options that ctx cancellation terminates:
// the shape-specialised session for the input dimensions dims (one list
// per input, in order) when there is one, else the dynamic session. When
// the call fails, the error wraps ctx.Err() if ctx stopped it, and is
// fail(the runtime's error) otherwise.
func (ns *namedSession) run(ctx context.Context, dims [][]int64, inVals, outVals []ort.Value, fail func(error) error) error {
	sess := ns.sess
	if ns.shapes != nil {
		if s := ns.shapes.session(shapeKey(dims), dims); s != nil {
			sess = s
		}
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
	if err := observed(ns.observe, ns.path, dims, func() error { return sess.RunWithOptions(inVals, outVals, ro) }); err != nil {
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
	err := ns.shapes.destroy()
	if derr := ns.sess.Destroy(); derr != nil {
		err = errors.Join(err, derr)
	}
	return err
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
