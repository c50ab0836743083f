package onnx

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// TestConvertDenseFloat32 checks the float32-to-float32 path against the
// general one (float64 input of the same values) and its refusals.
func TestConvertDenseFloat32(t *testing.T) {
	v := []float32{0, -1.5, math.MaxFloat32, -math.SmallestNonzeroFloat32, 3e-20, 7}
	got, err := convertDense(tensor.New(tensor.WithShape(2, 3), tensor.WithBacking(v)), Float32)
	require.NoError(t, err)
	v64 := make([]float64, len(v))
	for i, x := range v {
		v64[i] = float64(x)
	}
	want, err := convertDense(tensor.New(tensor.WithShape(2, 3), tensor.WithBacking(v64)), Float32)
	require.NoError(t, err)
	require.Equal(t, want, got)
	got.([]float32)[0] = 42
	require.Equal(t, float32(0), v[0], "the result must be a copy")

	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		w := []float32{1, 2, bad, 4}
		_, err := convertDense(tensor.New(tensor.WithShape(4), tensor.WithBacking(w)), Float32)
		require.ErrorContains(t, err, "element 2 is")
		require.ErrorContains(t, err, "want a finite number")
		_, err64 := convertDense(tensor.New(tensor.WithShape(4), tensor.WithBacking([]float64{1, 2, float64(bad), 4})), Float32)
		require.Equal(t, err64.Error(), err.Error(), "both paths word the refusal alike")
	}
}
