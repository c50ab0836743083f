package onnx

import (
	"fmt"
	"slices"
	"strings"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/ugo-diffusion/ugo"
)

// DType is the element type of a model input or output.
type DType int

// The element types this package converts to and from. A model input of any
// other type (strings, bool, uint8, ...) can only be reported, not fed.
const (
	Unsupported DType = iota
	Float32
	Float16
	Float64
	Int64
	Int32
)

// String returns the ONNX-style name of the type ("float32", "float16", ...).
func (d DType) String() string {
	switch d {
	case Float32:
		return "float32"
	case Float16:
		return "float16"
	case Float64:
		return "float64"
	case Int64:
		return "int64"
	case Int32:
		return "int32"
	}
	return "unsupported"
}

func dtypeOf(t ort.TensorElementDataType) DType {
	switch t {
	case ort.TensorElementDataTypeFloat:
		return Float32
	case ort.TensorElementDataTypeFloat16:
		return Float16
	case ort.TensorElementDataTypeDouble:
		return Float64
	case ort.TensorElementDataTypeInt64:
		return Int64
	case ort.TensorElementDataTypeInt32:
		return Int32
	}
	return Unsupported
}

// TensorInfo describes one model input or output.
type TensorInfo struct {
	// Name is the graph name of the input or output.
	Name string
	// DType is the element type; Unsupported for types this package cannot feed.
	DType DType
	// ONNXType is the runtime's name of the element type, useful when DType
	// is Unsupported.
	ONNXType string
	// Dims holds the declared dimensions, -1 for a dynamic (symbolic)
	// dimension. It is empty for a scalar.
	Dims []int64
}

// String formats the tensor as name[dims]dtype, with ? for dynamic dimensions.
func (ti TensorInfo) String() string {
	var b strings.Builder
	b.WriteString(ti.Name)
	b.WriteByte('[')
	for i, d := range ti.Dims {
		if i > 0 {
			b.WriteByte(',')
		}
		if d < 0 {
			b.WriteByte('?')
		} else {
			fmt.Fprint(&b, d)
		}
	}
	b.WriteByte(']')
	if ti.DType == Unsupported {
		b.WriteString(ti.ONNXType)
	} else {
		b.WriteString(ti.DType.String())
	}
	return b.String()
}

// TimestepShape is the layout a model expects for its timestep input.
type TimestepShape int

const (
	// TimestepBatch is a vector with one timestep per batch element, [N].
	TimestepBatch TimestepShape = iota
	// TimestepSingle is a one-element vector, [1], shared by the whole batch.
	TimestepSingle
	// TimestepScalar is a rank-0 tensor shared by the whole batch.
	TimestepScalar
)

// String returns "[N]", "[1]" or "scalar".
func (s TimestepShape) String() string {
	switch s {
	case TimestepBatch:
		return "[N]"
	case TimestepSingle:
		return "[1]"
	}
	return "scalar"
}

// ModelInfo describes an opened model: its inputs and outputs, the roles
// Open assigned to them, and the execution providers in use.
type ModelInfo struct {
	// Path is the file the model was opened from.
	Path string
	// Inputs and Outputs list every graph input and output in graph order.
	Inputs, Outputs []TensorInfo
	// Sample is the noisy-sample input (x), Timestep the timestep input (t)
	// and Output the predicted-noise output (eps).
	Sample, Timestep, Output TensorInfo
	// TimestepShape is how timesteps are passed. When it is TimestepSingle or
	// TimestepScalar every batch element of a call must share one timestep.
	TimestepShape TimestepShape
	// Extra lists the remaining inputs (text embeddings, class labels, ...),
	// which must be bound with Model.With before predicting.
	Extra []TensorInfo
	// Providers lists the execution providers the session was created with,
	// in priority order; the CPU provider is always last.
	Providers []string
	// RuntimeVersion is the version of the loaded ONNX Runtime library.
	RuntimeVersion string
	// SpatialMultiple is the number the spatial axes H and W of a sample
	// must be multiples of (WithSpatialMultiple); 0 or 1 when any size goes.
	SpatialMultiple int
	// FrameMultiple is the number the frame count F of a rank-5 sample must
	// be a multiple of (WithFrameMultiple); 0 or 1 when any count goes.
	FrameMultiple int
}

// DynamicBatch reports whether the model accepts any batch size.
func (mi ModelInfo) DynamicBatch() bool { return len(mi.Sample.Dims) > 0 && mi.Sample.Dims[0] < 0 }

// DynamicSize reports whether the model accepts any height and width (the
// last two sample dimensions).
func (mi ModelInfo) DynamicSize() bool {
	d := mi.Sample.Dims
	return len(d) >= 2 && d[len(d)-1] < 0 && d[len(d)-2] < 0
}

// DynamicFrames reports whether the model is a video model (a rank-5
// N, C, F, H, W sample) that accepts any frame count F.
func (mi ModelInfo) DynamicFrames() bool {
	return len(mi.Sample.Dims) == 5 && mi.Sample.Dims[2] < 0
}

// CheckShape reports whether the model can take a sample of the given shape
// (N, C, H, W) or (N, C, F, H, W). The error is a *ugo.ShapeError naming the
// first fixed dimension that does not match.
func (mi ModelInfo) CheckShape(shape []int) error {
	want := mi.Sample.Dims
	if len(shape) != len(want) {
		return &ugo.ShapeError{What: "x", Got: shape, Want: fmt.Sprintf("rank %d (model input %s)", len(want), mi.Sample)}
	}
	axes := axisNames(len(want))
	for i, d := range want {
		if d >= 0 && int64(shape[i]) != d {
			return &ugo.ShapeError{What: "x", Got: shape,
				Want: fmt.Sprintf("%s = %d: model input %s has a fixed %s", axes[i], d, mi.Sample, axisWord(axes[i]))}
		}
	}
	if k := mi.FrameMultiple; k > 1 && len(shape) == 5 && shape[2]%k != 0 {
		return &ugo.ShapeError{What: "x", Got: shape,
			Want: fmt.Sprintf("F a multiple of %d: the model takes frame counts divisible by %d (WithFrameMultiple)", k, k)}
	}
	if k := mi.SpatialMultiple; k > 1 {
		for i := len(shape) - 2; i < len(shape); i++ {
			if shape[i]%k != 0 {
				return &ugo.ShapeError{What: "x", Got: shape,
					Want: fmt.Sprintf("%s a multiple of %d: the model takes spatial sizes divisible by %d (WithSpatialMultiple)", axes[i], k, k)}
			}
		}
	}
	return nil
}

func axisNames(rank int) []string {
	if rank == 5 {
		return []string{"N", "C", "F", "H", "W"}
	}
	return []string{"N", "C", "H", "W"}
}

func axisWord(a string) string {
	switch a {
	case "N":
		return "batch size"
	case "C":
		return "channel count"
	case "F":
		return "frame count"
	case "H":
		return "height"
	}
	return "width"
}

// Names recognised for each role, in order of preference, as exported by
// common tools (torch.onnx.export scripts, diffusers/optimum UNets).
var (
	sampleNames   = []string{"x", "sample", "x_t", "xt", "noisy_sample", "latent", "latents", "input"}
	timestepNames = []string{"t", "timestep", "timesteps", "time", "sigma"}
	outputNames   = []string{"eps", "out_sample", "noise_pred", "noise", "output", "out"}
)

func tensorInfos(src []ort.InputOutputInfo) ([]TensorInfo, error) {
	out := make([]TensorInfo, len(src))
	for i, s := range src {
		if s.OrtValueType != ort.ONNXTypeTensor {
			return nil, fmt.Errorf("onnx: graph value %q is a %v, only tensors are supported", s.Name, s.OrtValueType)
		}
		dims := make([]int64, len(s.Dimensions))
		for j, d := range s.Dimensions {
			if d <= 0 {
				d = -1
			}
			dims[j] = d
		}
		out[i] = TensorInfo{Name: s.Name, DType: dtypeOf(s.DataType), ONNXType: s.DataType.String(), Dims: dims}
	}
	return out, nil
}

func names(ts []TensorInfo) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.String()
	}
	return strings.Join(s, ", ")
}

// pick returns the index of the tensor called want (when set) or of the first
// tensor whose name is in candidates, or -1.
func pick(ts []TensorInfo, want string, candidates []string, skip ...int) int {
	if want != "" {
		return slices.IndexFunc(ts, func(t TensorInfo) bool { return t.Name == want })
	}
	for _, c := range candidates {
		for i, t := range ts {
			if strings.EqualFold(t.Name, c) && !slices.Contains(skip, i) {
				return i
			}
		}
	}
	return -1
}

// assignRoles fills the role fields of mi from its inputs and outputs,
// honouring the names of cfg when set, and validates ranks and types.
func assignRoles(mi *ModelInfo, cfg *config) error {
	xi := pick(mi.Inputs, cfg.xName, sampleNames)
	if xi < 0 && cfg.xName == "" {
		// Structural fallback: the first float input of rank 4 or 5.
		xi = slices.IndexFunc(mi.Inputs, func(t TensorInfo) bool {
			return (len(t.Dims) == 4 || len(t.Dims) == 5) && (t.DType == Float32 || t.DType == Float16)
		})
	}
	if xi < 0 {
		return nameError("sample (x) input", cfg.xName, "WithInputNames", mi.Inputs)
	}
	ti := pick(mi.Inputs, cfg.tName, timestepNames, xi)
	if ti < 0 && cfg.tName == "" {
		ti = slices.IndexFunc(mi.Inputs, func(t TensorInfo) bool { return len(t.Dims) <= 1 })
	}
	if ti < 0 || ti == xi {
		return nameError("timestep (t) input", cfg.tName, "WithInputNames", mi.Inputs)
	}
	oi := pick(mi.Outputs, cfg.outName, outputNames)
	if oi < 0 && cfg.outName == "" && len(mi.Outputs) == 1 {
		oi = 0
	}
	if oi < 0 {
		return nameError("noise (eps) output", cfg.outName, "WithOutputName", mi.Outputs)
	}
	mi.Sample, mi.Timestep, mi.Output = mi.Inputs[xi], mi.Inputs[ti], mi.Outputs[oi]
	mi.Extra = nil
	for i, in := range mi.Inputs {
		if i != xi && i != ti {
			mi.Extra = append(mi.Extra, in)
		}
	}

	x, t, o := mi.Sample, mi.Timestep, mi.Output
	if len(x.Dims) != 4 && len(x.Dims) != 5 {
		return fmt.Errorf("onnx: sample input %s has rank %d, want 4 (N,C,H,W) or 5 (N,C,F,H,W)", x, len(x.Dims))
	}
	if x.DType != Float32 && x.DType != Float16 {
		return fmt.Errorf("onnx: sample input %s has element type %s, want float32 or float16", x, x.ONNXType)
	}
	if o.DType != Float32 && o.DType != Float16 {
		return fmt.Errorf("onnx: output %s has element type %s, want float32 or float16", o, o.ONNXType)
	}
	if len(o.Dims) != 0 && len(o.Dims) != len(x.Dims) {
		return fmt.Errorf("onnx: output %s has rank %d, but sample input %s has rank %d", o, len(o.Dims), x, len(x.Dims))
	}
	switch t.DType {
	case Float32, Float16, Float64, Int64, Int32:
	default:
		return fmt.Errorf("onnx: timestep input %s has element type %s, want float32, float16, float64, int64 or int32", t, t.ONNXType)
	}
	switch {
	case len(t.Dims) == 0:
		mi.TimestepShape = TimestepScalar
	case len(t.Dims) == 1 && t.Dims[0] == 1 && !(len(x.Dims) > 0 && x.Dims[0] == 1):
		mi.TimestepShape = TimestepSingle
	case len(t.Dims) == 1:
		mi.TimestepShape = TimestepBatch
	default:
		return fmt.Errorf("onnx: timestep input %s has rank %d, want [N], [1] or a scalar", t, len(t.Dims))
	}
	for _, e := range mi.Extra {
		if e.DType == Unsupported {
			return fmt.Errorf("onnx: extra input %s has element type %s, which this package cannot feed", e, e.ONNXType)
		}
	}
	return nil
}

func nameError(role, asked, option string, ts []TensorInfo) error {
	if asked != "" {
		return fmt.Errorf("onnx: the model has no %s named %q; it has %s", role, asked, names(ts))
	}
	return fmt.Errorf("onnx: cannot tell which is the %s among %s; name it with %s", role, names(ts), option)
}
