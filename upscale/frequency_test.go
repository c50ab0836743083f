package upscale

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
	"pgregory.net/rapid"

	"github.com/ugo-diffusion/ugo"
)

func drawTensor(t *rapid.T, label string, shape ...int) *tensor.Dense {
	x := newTensor(shape...)
	copy(x.Float32s(), rapid.SliceOfN(rapid.Float32Range(-3, 3), len(x.Float32s()), len(x.Float32s())).Draw(t, label))
	return x
}

func maxAbsDiff(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		m = max(m, math.Abs(float64(a[i]-b[i])))
	}
	return m
}

// LP keeps constants and, away from the edges and for integer factors
// 1/sf, linear ramps: the antialiased bilinear down (whose weights are then
// symmetric about each output centre) and the bilinear up are both exact on
// them.
func TestLowPassKeepsSmoothSignals(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := rapid.IntRange(8, 40).Draw(t, "h")
		sf := rapid.SampledFrom([]float64{0.5, 0.25}).Draw(t, "sf")
		w := rapid.IntRange(3, 10).Draw(t, "w/f") * int(1/sf)
		c := rapid.Float64Range(-2, 2).Draw(t, "c")
		slope := rapid.Float64Range(-0.2, 0.2).Draw(t, "slope")
		x := newTensor(1, 2, h, w)
		xs := x.Float32s()
		for i := range h * w {
			xs[i] = float32(c)                        // channel 0: constant
			xs[h*w+i] = float32(slope * float64(i%w)) // channel 1: ramp along W
		}
		lp, err := LowPass(x, sf)
		require.NoError(t, err)
		ls := lp.Float32s()
		for i := range h * w {
			if math.Abs(float64(ls[i])-c) > 1e-5 {
				t.Fatalf("LP of the constant %v: %v at %d", c, ls[i], i)
			}
		}
		// The low-resolution grid is round(sf*w) wide; its samples must
		// lie inside the ramp's support on both sides of an output sample.
		lw := math.Round(sf * float64(w))
		scale := float64(w) / lw
		for i := range w {
			u := (float64(i)+0.5)/scale - 0.5 // low-resolution coordinate
			if u < 1+1 || u > lw-1-2 {
				continue
			}
			want := slope * float64(i)
			if got := float64(ls[h*w+i]); math.Abs(got-want) > 1e-5 {
				t.Fatalf("LP of a ramp (w %d, sf %v) at column %d: %v, want %v", w, sf, i, got, want)
			}
		}
	})
}

func TestLowPassCutoffOneIsIdentity(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		x := drawTensor(t, "x", 1, 2, rapid.IntRange(1, 9).Draw(t, "h"), rapid.IntRange(1, 9).Draw(t, "w"))
		lp, err := LowPass(x, 1)
		require.NoError(t, err)
		require.Equal(t, x.Float32s(), lp.Float32s())
	})
}

// Mixing the frequencies of a tensor with itself gives it back; with sf =
// 1 the mix is all low; adding a constant to high does not change the mix
// (constants are low frequencies).
func TestMixFrequenciesIdentities(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := rapid.IntRange(4, 16).Draw(t, "h")
		w := rapid.IntRange(4, 16).Draw(t, "w")
		low := drawTensor(t, "low", 2, 1, h, w)
		high := drawTensor(t, "high", 2, 1, h, w)
		sf := rapid.SampledFrom([]float64{0, 0.25, 0.5}).Draw(t, "sf")

		self, err := MixFrequencies(low, low, sf)
		require.NoError(t, err)
		if d := maxAbsDiff(self.Float32s(), low.Float32s()); d > 1e-5 {
			t.Fatalf("Mix(x, x) differs from x by %v", d)
		}
		all, err := MixFrequencies(low, high, 1)
		require.NoError(t, err)
		if d := maxAbsDiff(all.Float32s(), low.Float32s()); d > 1e-5 {
			t.Fatalf("Mix(low, high) with sf 1 differs from low by %v", d)
		}
		mix, err := MixFrequencies(low, high, sf)
		require.NoError(t, err)
		shifted := clone(high)
		for i := range shifted.Float32s() {
			shifted.Float32s()[i] += 1.5
		}
		mix2, err := MixFrequencies(low, shifted, sf)
		require.NoError(t, err)
		if d := maxAbsDiff(mix.Float32s(), mix2.Float32s()); d > 1e-5 {
			t.Fatalf("a constant added to high changed the mix by %v", d)
		}
		// And the definition, term by term.
		lpLow, err := LowPass(low, sf)
		require.NoError(t, err)
		lpHigh, err := LowPass(high, sf)
		require.NoError(t, err)
		for i, v := range mix.Float32s() {
			want := lpLow.Float32s()[i] + high.Float32s()[i] - lpHigh.Float32s()[i]
			if math.Abs(float64(v-want)) > 1e-5 {
				t.Fatalf("mix[%d] = %v, want LP(low) + high - LP(high) = %v", i, v, want)
			}
		}
	})
}

func TestFrequencyErrors(t *testing.T) {
	x := newTensor(1, 1, 8, 8)
	for _, sf := range []float64{-0.5, 1.5, math.NaN(), math.Inf(1)} {
		_, err := LowPass(x, sf)
		require.Error(t, err, "sf %v", sf)
		_, err = MixFrequencies(x, x, sf)
		require.Error(t, err, "sf %v", sf)
	}
	var se *ugo.ShapeError
	_, err := LowPass(nil, 0.5)
	require.True(t, errors.As(err, &se))
	_, err = LowPass(newTensor(8), 0.5)
	require.True(t, errors.As(err, &se), "rank 1")
	_, err = MixFrequencies(x, newTensor(1, 1, 8, 4), 0.5)
	require.True(t, errors.As(err, &se), "shape mismatch")
	_, err = MixFrequencies(nil, x, 0.5)
	require.True(t, errors.As(err, &se))
	_, err = MixFrequencies(x, tensor.New(tensor.WithShape(1, 1, 8, 8), tensor.WithBacking(make([]float64, 64))), 0.5)
	require.True(t, errors.As(err, &se), "float64")
}
