package onnx

import (
	"fmt"
	"math"
	"slices"
	"unsafe"

	"github.com/x448/float16"
	ort "github.com/yalue/onnxruntime_go"
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
)

// toFloat16 converts src to IEEE 754 half-precision bits in dst (rounding to
// nearest even, as numpy and torch do).
func toFloat16(dst []uint16, src []float32) {
	for i, v := range src {
		dst[i] = float16.Fromfloat32(v).Bits()
	}
}

// fromFloat16 converts half-precision bits in src to float32 in dst.
func fromFloat16(dst []float32, src []uint16) {
	for i, v := range src {
		dst[i] = float16.Frombits(v).Float32()
	}
}

// u16Bytes views a []uint16 as bytes (native byte order, as ONNX Runtime
// expects).
func u16Bytes(s []uint16) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), 2*len(s))
}

// isHalfInf reports whether half-precision bits h are an infinity.
func isHalfInf(h uint16) bool { return h&0x7fff == 0x7c00 }

// toFloat16Checked is toFloat16 that stops at the first finite value beyond
// float16's range (its magnitude rounds to infinity, from 65520 on) and
// returns its index, or -1.
func toFloat16Checked(dst []uint16, src []float32) int {
	for i, v := range src {
		h := float16.Fromfloat32(v).Bits()
		if isHalfInf(h) && !math.IsInf(float64(v), 0) {
			return i
		}
		dst[i] = h
	}
	return -1
}

// RangeError reports an input value that the model input's element type
// cannot hold: a timestep beyond int64 or int32 for an integer-timestep
// model, or a finite value beyond float16's range (magnitude 65520 and up
// rounds to infinity) for a float16 input. Nothing is run: the value is not
// converted to something else, and the model is not blamed for an output
// that such an input would make non-finite.
type RangeError struct {
	// Input is the model input's name (empty where the value is being
	// converted for binding before the name is known).
	Input string
	// DType is the input's element type.
	DType DType
	// Index is the element's index in the value given; Value the element.
	Index int
	Value float64
}

// Error implements error.
func (e *RangeError) Error() string {
	in := ""
	if e.Input != "" {
		in = " for input " + e.Input
	}
	return fmt.Sprintf("onnx: element %d (%v) is out of the range of %s%s", e.Index, e.Value, e.DType, in)
}

// checkRange returns a *RangeError when the finite value v, as an element
// of an input of type dt (integers rounded as roundTimestep does), cannot be
// represented.
func checkRange(dt DType, v float64, i int) *RangeError {
	ok := true
	switch dt {
	case Float16:
		ok = !isHalfInf(float16.Fromfloat32(float32(v)).Bits())
	case Float32:
		ok = math.Abs(v) <= math.MaxFloat32 || math.Abs(float64(float32(v))) <= math.MaxFloat32
	case Int64:
		r := math.RoundToEven(v)
		ok = r >= -(1<<63) && r < 1<<63
	case Int32:
		r := math.RoundToEven(v)
		ok = r >= math.MinInt32 && r <= math.MaxInt32
	}
	if ok {
		return nil
	}
	return &RangeError{DType: dt, Index: i, Value: v}
}

// roundTimestep rounds a fractional timestep for an integer-timestep model:
// to nearest, ties to even, like torch.round.
func roundTimestep(v float32) float64 { return math.RoundToEven(float64(v)) }

// newValue wraps data (a typed slice already in the element type dt) as an
// ONNX Runtime value of the given dims, without copying. A rank-0 value is a
// scalar.
func newValue(dt DType, dims []int64, data any) (ort.Value, error) {
	shape := ort.Shape(dims)
	if len(dims) == 0 {
		switch d := data.(type) {
		case []float32:
			return ort.NewScalar(d[0])
		case []float64:
			return ort.NewScalar(d[0])
		case []int64:
			return ort.NewScalar(d[0])
		case []int32:
			return ort.NewScalar(d[0])
		case []uint16:
			return newHalfScalar(d[0])
		}
		return nil, fmt.Errorf("onnx: internal: no scalar for %T", data)
	}
	switch d := data.(type) {
	case []float32:
		return ort.NewTensor(shape, d)
	case []float64:
		return ort.NewTensor(shape, d)
	case []int64:
		return ort.NewTensor(shape, d)
	case []int32:
		return ort.NewTensor(shape, d)
	case []uint16:
		return ort.NewCustomDataTensor(shape, u16Bytes(d), ort.TensorElementDataTypeFloat16)
	}
	return nil, fmt.Errorf("onnx: internal: no tensor for %T", data)
}

// makeSlice allocates a slice of n elements holding values of type dt
// ([]uint16 for float16).
func makeSlice(dt DType, n int) any {
	switch dt {
	case Float32:
		return make([]float32, n)
	case Float16:
		return make([]uint16, n)
	case Float64:
		return make([]float64, n)
	case Int64:
		return make([]int64, n)
	case Int32:
		return make([]int32, n)
	}
	return nil
}

// denseValues returns the elements of d as float64s (for float types) or
// int64s (for integer types), copying.
func denseValues(d *tensor.Dense) (fs []float64, is []int64, err error) {
	switch v := d.Data().(type) {
	case []float32:
		fs = make([]float64, len(v))
		for i, x := range v {
			fs[i] = float64(x)
		}
	case []float64:
		fs = append(fs, v...)
	case []int64:
		is = append(is, v...)
	case []int32:
		for _, x := range v {
			is = append(is, int64(x))
		}
	case []int:
		for _, x := range v {
			is = append(is, int64(x))
		}
	case float32:
		fs = []float64{float64(v)}
	case float64:
		fs = []float64{v}
	case int64:
		is = []int64{v}
	case int32:
		is = []int64{int64(v)}
	case int:
		is = []int64{int64(v)}
	default:
		return nil, nil, fmt.Errorf("element type %v is not supported (use float32, float64, int64, int32 or int)", d.Dtype())
	}
	return fs, is, nil
}

// convertDense copies d into a new slice of element type dt. Floats feed
// float inputs, integers feed any input; floats never feed integer inputs.
func convertDense(d *tensor.Dense, dt DType) (any, error) {
	if v, ok := d.Data().([]float32); ok && dt == Float32 {
		// The common case, a float32 tensor for a float32 input: a copy
		// after the finiteness check, without the float64 detour below
		// (every float32 is in range).
		if i := ugo.FirstNonFinite(v); i >= 0 {
			return nil, fmt.Errorf("element %d is %v, want a finite number", i, float64(v[i]))
		}
		return slices.Clone(v), nil
	}
	fs, is, err := denseValues(d)
	if err != nil {
		return nil, err
	}
	n := len(fs) + len(is)
	get := func(i int) float64 {
		if fs != nil {
			return fs[i]
		}
		return float64(is[i])
	}
	for i := range n {
		v := get(i)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("element %d is %v, want a finite number", i, v)
		}
		if fs != nil || dt == Float16 || dt == Int32 {
			if re := checkRange(dt, v, i); re != nil {
				return nil, re
			}
		}
	}
	out := makeSlice(dt, n)
	switch o := out.(type) {
	case []float32:
		for i := range o {
			o[i] = float32(get(i))
		}
	case []float64:
		for i := range o {
			o[i] = get(i)
		}
	case []uint16:
		for i := range o {
			o[i] = float16.Fromfloat32(float32(get(i))).Bits()
		}
	case []int64:
		if fs != nil {
			return nil, fmt.Errorf("a %v tensor cannot feed an int64 input; pass integers", d.Dtype())
		}
		copy(o, is)
	case []int32:
		if fs != nil {
			return nil, fmt.Errorf("a %v tensor cannot feed an int32 input; pass integers", d.Dtype())
		}
		for i, v := range is {
			o[i] = int32(v)
		}
	default:
		return nil, fmt.Errorf("input type %s is not supported", dt)
	}
	return out, nil
}

// tileConcat builds the batch of an extra input for a call over several
// bindings: member k's data is repeated reps[k] times, members concatenated.
func tileConcat(dt DType, parts []any, reps []int) any {
	total := 0
	for k, p := range parts {
		total += sliceLen(p) * reps[k]
	}
	out := makeSlice(dt, total)
	off := 0
	for k, p := range parts {
		for range reps[k] {
			off += copySlice(out, off, p)
		}
	}
	return out
}

func sliceLen(s any) int {
	switch v := s.(type) {
	case []float32:
		return len(v)
	case []uint16:
		return len(v)
	case []float64:
		return len(v)
	case []int64:
		return len(v)
	case []int32:
		return len(v)
	}
	return 0
}

func copySlice(dst any, off int, src any) int {
	switch d := dst.(type) {
	case []float32:
		return copy(d[off:], src.([]float32))
	case []uint16:
		return copy(d[off:], src.([]uint16))
	case []float64:
		return copy(d[off:], src.([]float64))
	case []int64:
		return copy(d[off:], src.([]int64))
	case []int32:
		return copy(d[off:], src.([]int32))
	}
	return 0
}

// checkArg refuses the tensors no conversion can read correctly: nil, a
// zero tensor.Dense, a lazily transposed or column-major view (whose
// backing slice is not in logical order) and one whose backing slice does
// not match its shape. kind and name go into the error.
func checkArg(kind, name string, d *tensor.Dense) error {
	if d == nil {
		return fmt.Errorf("onnx: %s %s is nil", kind, name)
	}
	if d.Dtype().Type == nil {
		return fmt.Errorf("onnx: %s %s is a zero tensor.Dense (no dtype, no data)", kind, name)
	}
	if d.RequiresIterator() || !d.DataOrder().IsRowMajor() {
		return fmt.Errorf("onnx: %s %s is a lazily transposed or column-major view; Materialize or copy it first", kind, name)
	}
	n := 1
	for _, k := range d.Shape() {
		if k < 0 {
			return fmt.Errorf("onnx: %s %s has shape %v", kind, name, []int(d.Shape()))
		}
		n *= k
	}
	if d.DataSize() != n {
		return fmt.Errorf("onnx: %s %s has %d values for shape %v", kind, name, d.DataSize(), []int(d.Shape()))
	}
	return nil
}
