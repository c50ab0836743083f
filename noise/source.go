package noise

import (
	"fmt"
	"reflect"

	"gorgonia.org/tensor"
)

// Source fills dst with independent standard normal float32 values.
//
// One call of Normal is one torch.randn(len(dst)) call for the
// torch-compatible sources: the split of a run of draws into calls matters,
// because torch treats a request of n values as a unit (see TorchCPU and
// Philox). A Source keeps its own state and is not safe for concurrent use;
// give each goroutine its own source.
type Source interface {
	Normal(dst []float32)
}

// FillTensor fills the float32 tensor x with one src.Normal call over its
// elements in row-major order, which is what torch.randn(x.shape) does. It
// returns an error if x is nil, not float32, or a view without a dense
// backing slice of its own.
func FillTensor(src Source, x *tensor.Dense) error {
	if isNil(src) {
		return fmt.Errorf("noise: FillTensor: nil Source")
	}
	data, err := denseFloat32s(x)
	if err != nil {
		return err
	}
	src.Normal(data)
	return nil
}

// NewTensor returns a new float32 tensor of the given shape filled by one
// src.Normal call, the counterpart of torch.randn(shape, generator=g). It
// returns an error for an empty shape or a non-positive dimension.
func NewTensor(src Source, shape ...int) (*tensor.Dense, error) {
	if isNil(src) {
		return nil, fmt.Errorf("noise: NewTensor: nil Source")
	}
	if len(shape) == 0 {
		return nil, fmt.Errorf("noise: NewTensor: empty shape")
	}
	n := 1
	for _, d := range shape {
		if d <= 0 {
			return nil, fmt.Errorf("noise: NewTensor: shape %v has a non-positive dimension", shape)
		}
		if n > maxElements/d {
			return nil, fmt.Errorf("noise: NewTensor: shape %v is too large", shape)
		}
		n *= d
	}
	data := make([]float32, n)
	src.Normal(data)
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data)), nil
}

// maxElements bounds NewTensor's element count so that n*d cannot overflow.
const maxElements = 1 << 40

func denseFloat32s(x *tensor.Dense) ([]float32, error) {
	if x == nil {
		return nil, fmt.Errorf("noise: nil tensor")
	}
	if x.Dtype().Type == nil {
		return nil, fmt.Errorf("noise: a zero tensor.Dense (no dtype, no data)")
	}
	if x.Dtype() != tensor.Float32 {
		return nil, fmt.Errorf("noise: tensor has dtype %v, want float32", x.Dtype())
	}
	if x.IsView() || x.RequiresIterator() || !x.DataOrder().IsRowMajor() {
		return nil, fmt.Errorf("noise: tensor with shape %v is a view; materialize it first", x.Shape())
	}
	data, ok := x.Data().([]float32)
	if !ok {
		// A 0-d float32 tensor stores a scalar, not a slice.
		return nil, fmt.Errorf("noise: tensor with shape %v has no float32 backing slice", x.Shape())
	}
	return data, nil
}

// isNil reports a nil Source, including a typed nil such as a nil *PCG,
// whose Normal would dereference it.
func isNil(src Source) bool {
	if src == nil {
		return true
	}
	v := reflect.ValueOf(src)
	switch v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface:
		return v.IsNil()
	}
	return false
}
