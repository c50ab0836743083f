package onnx

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
)

// TestInputRange checks that values an input's element type cannot hold are
// refused with a *RangeError before anything runs, rather than converted
// (an int64 conversion of 1e19 is undefined; a float16 conversion of 70000
// is an infinity that the model turns into a "non-finite output"), and
// that the largest values that fit still run.
func TestInputRange(t *testing.T) {
	bound := func(t *testing.T, m *Model) *Bound {
		c := tensor.New(tensor.WithShape(1, 3, refD), tensor.Of(tensor.Float32))
		b, err := m.With("encoder_hidden_states", c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		model string
		x     float32
		t     []float32
		input string // "" when the call must succeed
		dt    DType
	}{
		{"int64.onnx", 0, []float32{1e19}, "t", Int64},
		{"int64.onnx", 0, []float32{5, -1e19}, "t", Int64},
		{"int64.onnx", 0, []float32{9.2e18, -9.2e18}, "", 0},
		{"fp16.onnx", 0, []float32{1, 70000}, "t", Float16},
		{"fp16.onnx", 0, []float32{65520}, "t", Float16},
		{"fp16.onnx", 0, []float32{65519, -65504}, "", 0},
		{"fp16.onnx", 1e5, []float32{1}, "x", Float16},
		{"fp16scalar.onnx", 0, []float32{1e5}, "timestep", Float16},
		{"fp16scalar.onnx", -7e4, []float32{10}, "sample", Float16},
		{"fp16scalar.onnx", 0, []float32{999}, "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.model, func(t *testing.T) {
			m := open(t, tc.model)
			var d ugo.Denoiser = m
			if len(m.Info().Extra) > 0 {
				d = bound(t, m)
			}
			x := tensor.New(tensor.WithShape(2, 2, 4, 4), tensor.Of(tensor.Float32))
			x.Float32s()[3] = tc.x
			err := d.PredictNoise(context.Background(), zerosLike(x), x, tc.t)
			if tc.input == "" {
				if err != nil {
					t.Fatalf("t %v x %v: %v", tc.t, tc.x, err)
				}
				return
			}
			var re *RangeError
			if !errors.As(err, &re) {
				t.Fatalf("t %v x %v: %v, want a *RangeError", tc.t, tc.x, err)
			}
			if re.Input != tc.input || re.DType != tc.dt {
				t.Errorf("RangeError of input %q (%s), want %q (%s)", re.Input, re.DType, tc.input, tc.dt)
			}
			if errors.Is(err, ErrNonFinite) {
				t.Errorf("an input out of range is not a non-finite model output: %v", err)
			}
			if want := "out of the range of " + tc.dt.String(); !strings.Contains(err.Error(), want) {
				t.Errorf("%q does not say %q", err, want)
			}
		})
	}
}

// TestConvertRange checks the conversions of Graph inputs and bound values.
func TestConvertRange(t *testing.T) {
	g := openGraph(t, modelPath("fp16.onnx"))
	x := tensor.New(tensor.WithShape(1, 2, 4, 4), tensor.Of(tensor.Float32))
	out := tensor.New(tensor.WithShape(1, 2, 4, 4), tensor.Of(tensor.Float32))
	err := g.Run(context.Background(), map[string]*tensor.Dense{"x": x, "t": tensor.New(tensor.WithShape(1), tensor.WithBacking([]float64{1e6}))},
		map[string]*tensor.Dense{"eps": out})
	var re *RangeError
	if !errors.As(err, &re) {
		t.Fatalf("%v, want a *RangeError", err)
	}
	if want := (RangeError{Input: "t", DType: Float16, Index: 0, Value: 1e6}); *re != want {
		t.Errorf("%+v, want %+v", *re, want)
	}

	m := open(t, "fp16scalar.onnx")
	c := tensor.New(tensor.WithShape(1, 2, refD), tensor.WithBacking([]float64{0, 1, 2, 3, 4, 5, 6, math.MaxFloat32 * 2}))
	_, err = m.With("encoder_hidden_states", c)
	if !errors.As(err, &re) {
		t.Fatalf("%v, want a *RangeError", err)
	}
	if re.Input != "encoder_hidden_states" || re.Index != 7 {
		t.Errorf("RangeError of input %q, index %d, want encoder_hidden_states, 7", re.Input, re.Index)
	}

	for _, c := range []struct {
		dt DType
		v  float64
		ok bool
	}{
		{Int32, math.MaxInt32, true}, {Int32, math.MaxInt32 + 1, false}, {Int32, math.MinInt32 - 0.5, true}, {Int32, math.MinInt32 - 0.51, false},
		{Int64, 9.223372036854775e18, true}, {Int64, 1 << 63, false}, {Int64, -(1 << 63), true}, {Int64, -1e19, false},
		{Float16, 65519.99, true}, {Float16, 65520, false}, {Float16, -65520, false},
		{Float32, math.MaxFloat32, true}, {Float32, 1e39, false}, {Float64, 1e300, true},
	} {
		if got := checkRange(c.dt, c.v, 0) == nil; got != c.ok {
			t.Errorf("checkRange(%s, %v) ok = %v, want %v", c.dt, c.v, got, c.ok)
		}
	}
}

// TestHalfScalarTimestep runs an optimum float16 export with a rank-0
// float16 timestep several times on one cached binding with different
// timesteps: each call must see its own timestep, and the steady state
// allocates no more than the float32 models do.
func TestHalfScalarTimestep(t *testing.T) {
	m := open(t, "fp16scalar.onnx")
	rows := make([][]float32, 3)
	cond := tensor.New(tensor.WithShape(1, 3, refD), tensor.Of(tensor.Float32))
	for j := range rows {
		rows[j] = cond.Float32s()[j*refD : (j+1)*refD]
		for k := range rows[j] {
			rows[j][k] = float32(j-k) / 4 // exact in float16
		}
	}
	b, err := m.With("encoder_hidden_states", cond)
	if err != nil {
		t.Fatal(err)
	}
	x := tensor.New(tensor.WithShape(2, 2, 4, 4), tensor.Of(tensor.Float32))
	for i := range x.Float32s() {
		x.Float32s()[i] = float32(i%7) / 8
	}
	dst := zerosLike(x)
	ctx := context.Background()
	for _, ts := range []float32{999, 1, 500.5, 999} {
		if err := b.PredictNoise(ctx, dst, x, []float32{ts}); err != nil {
			t.Fatal(err)
		}
		tv := float64(roundHalf([]float32{ts})[0])
		want := reference(x.Float32s(), []int{2, 2, 4, 4}, func(int) float64 { return tv }, func(int) [][]float32 { return rows })
		assertClose(t, dst.Float32s(), want, 0.06, "fp16scalar.onnx")
	}
	ts := []float32{250}
	allocs := testing.AllocsPerRun(10, func() { _ = b.PredictNoise(ctx, dst, x, ts) })
	f32 := open(t, "extra.onnx")
	bf, err := f32.With("encoder_hidden_states", cond)
	if err != nil {
		t.Fatal(err)
	}
	if err := bf.PredictNoise(ctx, dst, x, ts); err != nil {
		t.Fatal(err)
	}
	base := testing.AllocsPerRun(10, func() { _ = bf.PredictNoise(ctx, dst, x, ts) })
	if allocs > base {
		t.Errorf("float16 scalar timestep: %v allocations per call, the float32 [N] model %v", allocs, base)
	}
	t.Logf("%v allocations per call (float32 [N] timestep model: %v)", allocs, base)
}

// TestHalfScalarBatchedCFG runs classifier-free guidance over the optimum
// float16 export in one batched call: both branches share the rank-0
// timestep.
func TestHalfScalarBatchedCFG(t *testing.T) {
	m := open(t, "fp16scalar.onnx")
	mk := func(v float32) (*Bound, [][]float32) {
		c := tensor.New(tensor.WithShape(1, 2, refD), tensor.Of(tensor.Float32))
		rows := [][]float32{c.Float32s()[:refD], c.Float32s()[refD:]}
		for i := range c.Float32s() {
			c.Float32s()[i] = v * float32(i%3-1) // exact in float16
		}
		b, err := m.With("encoder_hidden_states", c)
		if err != nil {
			t.Fatal(err)
		}
		return b, rows
	}
	cb, crows := mk(0.5)
	ub, urows := mk(-0.25)
	g, err := BatchedCFG(cb, ub, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !g.Batched() {
		t.Fatal("BatchedCFG over the float16 export is not batched")
	}
	x := tensor.New(tensor.WithShape(2, 2, 4, 4), tensor.Of(tensor.Float32))
	for i := range x.Float32s() {
		x.Float32s()[i] = float32(i%5) / 4
	}
	dst := zerosLike(x)
	if err := g.PredictNoise(context.Background(), dst, x, []float32{420}); err != nil {
		t.Fatal(err)
	}
	tOf := func(int) float64 { return 420 }
	ec := reference(x.Float32s(), []int{2, 2, 4, 4}, tOf, func(int) [][]float32 { return crows })
	eu := reference(x.Float32s(), []int{2, 2, 4, 4}, tOf, func(int) [][]float32 { return urows })
	want := make([]float32, len(ec))
	for i := range want {
		want[i] = eu[i] + 3*(ec[i]-eu[i])
	}
	assertClose(t, dst.Float32s(), want, 0.03, "batched CFG over fp16scalar.onnx")
}

// TestScalarTimestepReused checks the rank-0 float32 timestep (optimum >=
// 1.24's float32 exports): one tensor per cached binding, rewritten on
// every call, so successive timesteps are each seen and a steady-state
// call allocates no more than with a [N] timestep.
func TestScalarTimestepReused(t *testing.T) {
	m := open(t, "scalar.onnx")
	x := tensor.New(tensor.WithShape(2, 2, 4, 4), tensor.Of(tensor.Float32))
	for i := range x.Float32s() {
		x.Float32s()[i] = float32(i%9) / 8
	}
	dst := zerosLike(x)
	ctx := context.Background()
	for _, ts := range []float32{999, 3, 500.25} {
		if err := m.PredictNoise(ctx, dst, x, []float32{ts}); err != nil {
			t.Fatal(err)
		}
		want := reference(x.Float32s(), []int{2, 2, 4, 4}, func(int) float64 { return float64(ts) }, nil)
		assertClose(t, dst.Float32s(), want, 1e-4, "scalar.onnx")
	}
	ts := []float32{10}
	allocs := testing.AllocsPerRun(10, func() { _ = m.PredictNoise(ctx, dst, x, ts) })
	dyn := open(t, "dynamic.onnx")
	if err := dyn.PredictNoise(ctx, dst, x, ts); err != nil {
		t.Fatal(err)
	}
	base := testing.AllocsPerRun(10, func() { _ = dyn.PredictNoise(ctx, dst, x, ts) })
	if allocs > base {
		t.Errorf("%v allocations per call, the [N] timestep model %v", allocs, base)
	}
	t.Logf("%v allocations per call ([N] timestep model: %v)", allocs, base)
}
