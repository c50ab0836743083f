package tiling

import (
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo/internal/modelcall"
)

// checkCall validates PredictNoise's arguments without allocating on success
// and returns x's shape (modelcall.Check).
func checkCall(dst, x *tensor.Dense, t []float32) ([]int, error) {
	return modelcall.Check("tiling", dst, x, t)
}
