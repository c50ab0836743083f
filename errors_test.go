package ugo_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"

	"pgregory.net/rapid"

	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
)

// TestHostileSamples feeds CheckSample and CheckPrediction the tensors a
// careless or hostile caller can build: every one must be an error with a
// readable message, never a panic or a formatting failure.
func TestHostileSamples(t *testing.T) {
	transposed := dense(1, 1, 2, 3)
	require.NoError(t, transposed.T(0, 1, 3, 2))
	colMajor := tensor.New(tensor.WithShape(1, 1, 2, 3), tensor.WithBacking(make([]float32, 6)), tensor.AsFortran(nil))
	big := dense(2, 1, 4, 4)
	sub, err := big.Slice(nil, nil, tensor.S(0, 2))
	require.NoError(t, err)
	strided := sub.(*tensor.Dense)
	short := tensor.New(tensor.WithShape(1, 1, 2, 2), tensor.WithBacking(make([]float32, 4)))
	require.NoError(t, short.Reshape(1, 1, 2, 2))
	tests := []struct {
		name string
		x    *tensor.Dense
	}{
		{"nil", nil},
		{"zero Dense", &tensor.Dense{}},
		{"float64", tensor.New(tensor.WithShape(1, 1, 2, 2), tensor.Of(tensor.Float64))},
		{"int64", tensor.New(tensor.WithShape(1, 1, 2, 2), tensor.Of(tensor.Int64))},
		{"scalar", tensor.New(tensor.FromScalar(float32(1)))},
		{"rank 3", dense(1, 2, 2)},
		{"rank 6", dense(1, 1, 1, 1, 2, 2)},
		{"lazily transposed", transposed},
		{"column-major", colMajor},
		{"strided view", strided},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ugo.CheckSample("x", tc.x)
			require.Error(t, err)
			var se *ugo.ShapeError
			require.ErrorAs(t, err, &se)
			require.NotContains(t, err.Error(), "%!")
			ok := dense(1, 1, 2, 2)
			for _, e := range []error{ugo.CheckPrediction(ok, tc.x, []float32{1}), ugo.CheckPrediction(tc.x, ok, []float32{1})} {
				require.Error(t, e)
				require.NotContains(t, e.Error(), "%!")
			}
		})
	}
	_, err = ugo.CheckSample("x", short)
	require.NoError(t, err, "a tensor reshaped in place is fine")
}

func TestCheckPredictionRefusesAliasing(t *testing.T) {
	x := dense(2, 1, 4, 4)
	err := ugo.CheckPrediction(x, x, []float32{1})
	require.ErrorIs(t, err, ugo.ErrAlias)
	// Two tensors over overlapping parts of one buffer.
	buf := make([]float32, 48)
	a := tensor.New(tensor.WithShape(2, 1, 4, 4), tensor.WithBacking(buf[:32]))
	b := tensor.New(tensor.WithShape(2, 1, 4, 4), tensor.WithBacking(buf[16:]))
	require.ErrorIs(t, ugo.CheckPrediction(a, b, []float32{1}), ugo.ErrAlias)
	// Adjacent, not overlapping.
	c := tensor.New(tensor.WithShape(1, 1, 4, 4), tensor.WithBacking(buf[:16]))
	d := tensor.New(tensor.WithShape(1, 1, 4, 4), tensor.WithBacking(buf[16:32]))
	require.NoError(t, ugo.CheckPrediction(c, d, []float32{1}))
}

type nilModel struct{ scale float32 }

func (m *nilModel) PredictNoise(context.Context, *tensor.Dense, *tensor.Dense, []float32) error {
	_ = m.scale // dereferences: a typed nil would panic here
	return nil
}

func TestCheckDenoiserSeesTypedNils(t *testing.T) {
	var p *nilModel
	var f ugo.DenoiserFunc
	for _, d := range []ugo.Denoiser{nil, p, f} {
		err := ugo.CheckDenoiser("model", d)
		require.ErrorIs(t, err, ugo.ErrNilDenoiser)
		require.True(t, ugo.IsNil(d))
		require.NotContains(t, err.Error(), "%!")
	}
	require.NoError(t, ugo.CheckDenoiser("model", &nilModel{}))
	require.NoError(t, ugo.CheckDenoiser("model", ugo.DenoiserFunc(func(context.Context, *tensor.Dense, *tensor.Dense, []float32) error { return nil })))
}

func TestCheckFinite(t *testing.T) {
	inf := float32(math.Inf(1))
	for _, tc := range []struct {
		v    []float32
		want int
	}{{[]float32{0, 1, inf}, 2}, {[]float32{float32(math.NaN())}, 0}, {[]float32{1, -inf, 0}, 1}} {
		err := ugo.CheckFinite("out", tc.v)
		require.ErrorIs(t, err, ugo.ErrNonFinite)
		require.Equal(t, tc.want, ugo.FirstNonFinite(tc.v))
		require.Contains(t, err.Error(), fmt.Sprintf("at index %d", tc.want))
	}
	require.NoError(t, ugo.CheckFinite("out", []float32{0, -1, math.MaxFloat32, -math.MaxFloat32}))
	require.Equal(t, -1, ugo.FirstNonFinite(nil))
}

func TestMemoryLimit(t *testing.T) {
	prev := ugo.SetMemoryLimit(1 << 20)
	defer ugo.SetMemoryLimit(prev)
	require.NoError(t, ugo.CheckMemory("small", 1<<20))
	err := ugo.CheckMemory("a 2x4x8192x8192 sample", ugo.TensorBytes(3, 2, 4, 8192, 8192))
	var me *ugo.MemoryError
	require.ErrorAs(t, err, &me)
	require.ErrorIs(t, err, ugo.ErrTooLarge)
	require.Equal(t, int64(3*2*4*8192*8192*4), me.Need)
	require.Equal(t, "a 2x4x8192x8192 sample would need 6.0 GiB, more than the memory limit of 1.0 MiB (ugo.SetMemoryLimit)", err.Error())
	// Overflowing estimates saturate instead of wrapping to small numbers.
	require.Equal(t, int64(math.MaxInt64), ugo.TensorBytes(1, 1<<40, 1<<40))
	require.Equal(t, int64(math.MaxInt64), ugo.TensorBytes(1, -1, 4))
	require.Equal(t, int64(math.MaxInt64), ugo.TensorBytes(-2, 4))
	require.Equal(t, int64(0), ugo.TensorBytes(1, 0, 1<<62))
	require.ErrorIs(t, ugo.CheckMemory("overflow", ugo.TensorBytes(1, 1<<40, 1<<40)), ugo.ErrTooLarge)
	require.Contains(t, ugo.CheckMemory("overflow", -1).Error(), "more than 8 EiB")
	require.Equal(t, int64(1<<20), ugo.SetMemoryLimit(0))
	require.NoError(t, ugo.CheckMemory("anything", math.MaxInt64-1))
}

func TestErrorsAreDistinct(t *testing.T) {
	all := []error{ugo.ErrNonFinite, ugo.ErrNilDenoiser, ugo.ErrAlias, ugo.ErrTooLarge}
	for i, a := range all {
		for j, b := range all {
			require.Equal(t, i == j, errors.Is(a, b))
		}
	}
}

// TestPropertyFirstNonFinite compares FirstNonFinite, which checks blocks
// of sixteen at once, with an element-by-element search, on slices of any
// length with non-finite values at any places.
func TestPropertyFirstNonFinite(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 80).Draw(t, "n")
		v := make([]float32, n)
		special := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}
		for i := range v {
			v[i] = float32(rapid.Float64Range(-math.MaxFloat32, math.MaxFloat32).Draw(t, "finite"))
			if rapid.IntRange(0, 19).Draw(t, "special") == 0 {
				v[i] = rapid.SampledFrom(special).Draw(t, "non-finite")
			}
		}
		want := -1
		for i, f := range v {
			if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
				want = i
				break
			}
		}
		if got := ugo.FirstNonFinite(v); got != want {
			t.Fatalf("FirstNonFinite(%v) = %d, want %d", v, got, want)
		}
	})
}
