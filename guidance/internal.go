package guidance

import (
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo/internal/modelcall"
)

// checkCall validates PredictNoise's arguments without allocating on success
// and returns x's shape (modelcall.Check).
func checkCall(dst, x *tensor.Dense, t []float32) ([]int, error) {
	return modelcall.Check("guidance", dst, x, t)
}

// newTensor wraps a fresh float32 buffer of the given shape.
func newTensor(shape []int) *tensor.Dense {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(make([]float32, n)))
}
