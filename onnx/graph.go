package onnx

import (
	"context"
	"fmt"
	"reflect"
	"slices"

	ort "github.com/yalue/onnxruntime_go"
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
)

// Graph runs an arbitrary ONNX graph as a function of named tensors:
// classifiers, feature extractors, text encoders taking int32 or int64
// token ids, VAE decoders and encoders in float32, float16 or float64,
// anything that is not an eps-prediction network (use Open for those).
// Values are converted at the boundary, so callers always pass and receive
// ordinary tensors:
//
//   - an input may be fed from a float32, float64, int64, int32 or int
//     tensor; it is converted to the input's element type (floats feed float
//     inputs only, integers feed any input; float16 rounds to nearest even);
//   - an output is written into a float32 tensor, converted from float32,
//     float16 or float64 (integer outputs cannot be requested).
//
// A float32 tensor feeding a float32 input is passed as it is, without a
// copy.
//
// A Graph is safe for concurrent use. Each Run allocates its converted inputs
// and outputs, which suits calls made once per image (text encoding, VAE
// decoding, classifying), not a sampling loop's hot path. Close releases it.
type Graph struct {
	namedSession
}

// OpenGraph loads the ONNX graph at path with the same options as Open
// (library path, threads, execution providers and fallback; the denoiser's
// name options are ignored), and WithOutputs to restrict the session to
// some outputs. As Open, it lets ONNX Runtime read the file itself, so that
// graphs whose weights are stored as external data next to the .onnx file
// (model.onnx_data, weights.pb) load. Every input must be float32, float16,
// float64, int64 or int32; outputs of other types are reported by Info but
// cannot be requested.
func OpenGraph(path string, opts ...Option) (*Graph, error) {
	src, err := prepare(path, opts)
	if err != nil {
		return nil, err
	}
	si := src.graphInfo()
	outputs := src.cfg.outputs
	for _, ti := range si.Inputs {
		if ti.DType == Unsupported {
			return nil, fmt.Errorf("onnx: %s: input %s has element type %s, which this package cannot feed", path, ti, ti.ONNXType)
		}
	}
	if len(outputs) > 0 {
		all := si.Outputs
		si.Outputs = nil
		for _, name := range outputs {
			k := slices.IndexFunc(all, func(ti TensorInfo) bool { return ti.Name == name })
			if k < 0 {
				return nil, fmt.Errorf("onnx: %s has no output %q (outputs: %s)", path, name, names(all))
			}
			if slices.ContainsFunc(si.Outputs, func(ti TensorInfo) bool { return ti.Name == name }) {
				continue
			}
			si.Outputs = append(si.Outputs, all[k])
		}
	}
	g := &Graph{}
	if err := g.open(src, si); err != nil {
		return nil, err
	}
	return g, nil
}

// Inspect returns the declared inputs and outputs of the ONNX graph at path
// without opening a session for it (Providers is empty), for callers that
// choose OpenGraph's WithOutputs from the names a graph has, such as the
// penultimate hidden_states.N output of a text encoder. opts are Open's;
// only the library path matters.
func Inspect(path string, opts ...Option) (GraphInfo, error) {
	src, err := prepare(path, opts)
	if err != nil {
		return GraphInfo{}, err
	}
	return src.graphInfo(), nil
}

// Info describes the graph's inputs and the outputs it can return, and the
// providers in use.
func (g *Graph) Info() GraphInfo {
	if g == nil {
		return GraphInfo{}
	}
	return g.infoCopy()
}

// Input returns the description of the graph input name.
func (g *Graph) Input(name string) (TensorInfo, bool) {
	if g == nil {
		return TensorInfo{}, false
	}
	i, ok := g.ins[name]
	if !ok {
		return TensorInfo{}, false
	}
	return g.info.Inputs[i], true
}

// Output returns the description of the graph output name.
func (g *Graph) Output(name string) (TensorInfo, bool) {
	if g == nil {
		return TensorInfo{}, false
	}
	i, ok := g.outs[name]
	if !ok {
		return TensorInfo{}, false
	}
	return g.info.Outputs[i], true
}

// checkDims validates shape against ti's rank and fixed dimensions.
func checkDims(kind, name string, shape []int, ti TensorInfo) ([]int64, error) {
	if len(shape) != len(ti.Dims) {
		return nil, fmt.Errorf("onnx: %s %s has shape %v, want rank %d (%s)", kind, name, shape, len(ti.Dims), ti)
	}
	dims := make([]int64, len(shape))
	for i, n := range shape {
		if n <= 0 || (ti.Dims[i] > 0 && int64(n) != ti.Dims[i]) {
			return nil, fmt.Errorf("onnx: %s %s has shape %v, want %s", kind, name, shape, ti)
		}
		dims[i] = int64(n)
	}
	return dims, nil
}

// Run evaluates the graph. inputs must name every graph input; outputs names
// the outputs wanted (at least one), each a float32 tensor of the shape the
// graph produces, into which the result is written (converted from float16
// or float64 when the graph's output is). Input shapes are checked against
// the declared fixed dimensions before the call, output ranks too, and the
// runtime checks the actual sizes during it. A
// NaN or infinite output is an error wrapping ErrNonFinite. ctx cancellation
// stops a running call.
func (g *Graph) Run(ctx context.Context, inputs, outputs map[string]*tensor.Dense) error {
	if g == nil {
		return errNil
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	if err := g.ready(ctx, outputs); err != nil {
		return err
	}
	inVals := make([]ort.Value, len(g.info.Inputs))
	inDims := make([][]int64, len(g.info.Inputs))
	outVals := make([]ort.Value, len(g.info.Outputs))
	defer destroyValues(inVals, outVals)
	for name, d := range inputs {
		i, err := g.inputIndex(name)
		if err != nil {
			return err
		}
		ti := g.info.Inputs[i]
		if err := checkArg("Run: input", ti.String(), d); err != nil {
			return err
		}
		shape := []int(d.Shape())
		if d.IsScalar() {
			shape = nil
		}
		dims, err := checkDims("input", name, shape, ti)
		if err != nil {
			return err
		}
		var data any
		if ti.DType == Float32 && d.Dtype() == tensor.Float32 {
			data = d.Float32s() // fed as is: the runtime does not write inputs
		} else if data, err = convertDense(d, ti.DType); err != nil {
			if re, ok := err.(*RangeError); ok {
				re.Input = ti.Name
				return re
			}
			return fmt.Errorf("onnx: Run: input %s: %w", ti, err)
		}
		if sliceLen(data) != numel(dims) {
			return fmt.Errorf("onnx: Run: input %s: %d values for shape %v", ti, sliceLen(data), shape)
		}
		v, err := newValue(ti.DType, dims, data)
		if err != nil {
			return fmt.Errorf("onnx: Run: input %s: %w", ti, err)
		}
		inVals[i], inDims[i] = v, dims
	}
	if err := g.allInputs(inVals); err != nil {
		return err
	}
	type result struct {
		dst []float32
		src any // the runtime's buffer when it is not dst
		ti  TensorInfo
	}
	var results []result
	for name, d := range outputs {
		i, err := g.outputIndex(name)
		if err != nil {
			return err
		}
		ti := g.info.Outputs[i]
		if err := checkArg("Run: output", ti.String(), d); err != nil {
			return err
		}
		if d.Dtype() != tensor.Float32 {
			return fmt.Errorf("onnx: Run: output %s: want a float32 destination tensor", ti)
		}
		// Declared output shapes are only advisory (exporters often record
		// the traced example's size), so only the rank is checked here; the
		// runtime rejects a destination of the wrong size.
		dims := make([]int64, len(d.Shape()))
		for k, n := range d.Shape() {
			dims[k] = int64(n)
		}
		if len(ti.Dims) > 0 && len(ti.Dims) != len(dims) {
			return fmt.Errorf("onnx: output %s has shape %v, want rank %d (%s)", name, []int(d.Shape()), len(ti.Dims), ti)
		}
		dst := d.Float32s()
		if len(dst) != numel(dims) {
			return fmt.Errorf("onnx: Run: output %s: destination is not a dense tensor", ti)
		}
		r := result{dst: dst, ti: ti}
		switch ti.DType {
		case Float32:
		case Float16, Float64:
			r.src = makeSlice(ti.DType, len(dst))
		default:
			return fmt.Errorf("onnx: Run: output %s is %s; only float outputs can be requested", ti, ti.ONNXType)
		}
		buf := r.src
		if buf == nil {
			buf = dst
		}
		v, err := newValue(ti.DType, dims, buf)
		if err != nil {
			return fmt.Errorf("onnx: Run: output %s: %w", ti, err)
		}
		outVals[i] = v
		results = append(results, r)
	}
	err := g.run(ctx, inDims, inVals, outVals, func(err error) error {
		for i, v := range outVals {
			if v != nil && reflect.ValueOf(v).IsNil() {
				return fmt.Errorf("onnx: inference failed (model %s): the runtime could not return output %s, which was not requested; open the graph with WithOutputs: %w",
					g.info.Path, g.info.Outputs[i], err)
			}
		}
		return &RunError{Model: g.info.Path, Inputs: describeInputs(inputs), Err: err}
	})
	if err != nil {
		return err
	}
	for _, r := range results {
		switch s := r.src.(type) {
		case []uint16:
			fromFloat16(r.dst, s)
		case []float64:
			for i, v := range s {
				r.dst[i] = float32(v)
			}
		}
		if i := ugo.FirstNonFinite(r.dst); i >= 0 {
			return fmt.Errorf("onnx: %w: output %s element %d is %v (model %s)", ErrNonFinite, r.ti.Name, i, r.dst[i], g.info.Path)
		}
	}
	return nil
}

func numel(dims []int64) int {
	n := 1
	for _, d := range dims {
		n *= int(d)
	}
	return n
}

// ShapeSessions describes the shape-specialised sessions the graph has
// created so far (see WithShapeSessions), in the order of the first call
// with each set of input shapes; none without that option.
func (g *Graph) ShapeSessions() []ShapeSession {
	if g == nil {
		return nil
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.shapes.list()
}

// Close releases the graph. Calls after Close return ErrClosed.
func (g *Graph) Close() error {
	if g == nil {
		return nil
	}
	return g.close()
}
