package guidance

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"pgregory.net/rapid"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/internal/resample"
	"github.com/ugo-diffusion/ugo/sampler"
)

// hookAt returns the HookStep of a one-step trajectory at timestep t.
func hookAt(shape []int, t float32) sampler.HookStep {
	p := &sampler.Trajectory{Timesteps: []float32{t}, Noisy: []bool{false}}
	return sampler.HookStep{Step: 0, Steps: 1, Trajectory: p, Shape: shape}
}

// TestPropertyBlockClamp checks, on random shapes, factors, ranges and
// batches, that the hook leaves every element of x0 in the range, moves
// every block mean to the clamped mean of the input's, and leaves blocks
// already inside the range alone, bit for bit.
func TestPropertyBlockClamp(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		shape, factors := drawCase(rt)
		one := append([]int{1}, shape[1:]...)
		plan, _ := resample.NewPooling(one, factors)
		r := rand.New(rand.NewPCG(rapid.Uint64().Draw(rt, "seed"), 3))
		scale := rapid.Float64Range(0.2, 4).Draw(rt, "scale")
		rng := rapid.Float64Range(0.5, 2).Draw(rt, "range")
		opts := DefaultUpsampleOptions()
		opts.Factors = factors
		hook, err := BlockClamp(testSchedule, opts, rng)
		if err != nil {
			rt.Fatal(err)
		}
		x := randTensor(r, shape...).Float32s()
		for i := range x {
			x[i] *= float32(scale)
		}
		got := append([]float32(nil), x...)
		if err := hook.X0(context.Background(), hookAt(shape, 500), got); err != nil {
			rt.Fatal(err)
		}
		if plan.K() == 1 {
			if maxAbsDiff(got, x) != 0 {
				rt.Fatal("factors with product 1 changed x0")
			}
			return
		}
		per := plan.HighLen()
		mIn, mOut := make([]float32, plan.LowLen()), make([]float32, plan.LowLen())
		outside, anyOut := make([]float32, per), make([]float32, plan.LowLen())
		up := make([]float32, per)
		for b := 0; b < len(x); b += per {
			in, out := x[b:b+per], got[b:b+per]
			for i, v := range out {
				if math.Abs(float64(v)) > rng*(1+1e-6) {
					rt.Fatalf("x0[%d] = %v outside ±%v", b+i, v, rng)
				}
				outside[i] = 0
				if math.Abs(float64(in[i])) > rng {
					outside[i] = 1
				}
			}
			plan.Pool(mIn, in, 1)
			plan.Pool(mOut, out, 1)
			for j, m := range mIn {
				want := math.Min(math.Max(float64(m), -rng), rng)
				if math.Abs(float64(mOut[j])-want) > 1e-5*(1+scale) {
					rt.Fatalf("block %d: mean %v, want clamp(%v) = %v", j, mOut[j], m, want)
				}
			}
			plan.Pool(anyOut, outside, 1)
			plan.Repeat(up, anyOut)
			for i := range out {
				if up[i] == 0 && math.Float32bits(out[i]) != math.Float32bits(in[i]) {
					rt.Fatalf("element %d of a block inside the range changed: %v -> %v", b+i, in[i], out[i])
				}
			}
		}
	})
}

// TestBlockClampWindow checks that the clamp follows the guidance window:
// outside it (t below (1-Eta) T, or Theta 0) x0 is left alone.
func TestBlockClampWindow(t *testing.T) {
	shape := []int{1, 1, 4, 4}
	x := make([]float32, 16)
	for i := range x {
		x[i] = 3
	}
	for _, c := range []struct {
		theta, eta float64
		t          float32
		clamps     bool
	}{{1, 0.5, 600, true}, {1, 0.5, 400, false}, {0, 1, 900, false}, {1, 1, 0, true}} {
		opts := DefaultUpsampleOptions()
		opts.Theta, opts.Eta = c.theta, c.eta
		hook, err := BlockClamp(testSchedule, opts, 1)
		if err != nil {
			t.Fatal(err)
		}
		got := append([]float32(nil), x...)
		if err := hook.X0(context.Background(), hookAt(shape, c.t), got); err != nil {
			t.Fatal(err)
		}
		if clamped := got[0] == 1; clamped != c.clamps {
			t.Errorf("Theta %v, Eta %v, t %v: x0[0] = %v, clamped %v, want %v", c.theta, c.eta, c.t, got[0], clamped, c.clamps)
		}
	}
}

// TestBlockClampErrors checks the refused arguments and shapes.
func TestBlockClampErrors(t *testing.T) {
	opts := DefaultUpsampleOptions()
	for _, r := range []float64{0, -1, math.NaN(), math.Inf(1), 1e300} {
		if _, err := BlockClamp(testSchedule, opts, r); err == nil {
			t.Errorf("range %v accepted", r)
		}
	}
	if _, err := BlockClamp(nil, opts, 1); err == nil {
		t.Error("nil schedule accepted")
	}
	bad := opts
	bad.Eta = 2
	if _, err := BlockClamp(testSchedule, bad, 1); err == nil {
		t.Error("invalid options accepted")
	}
	hook, err := BlockClamp(testSchedule, opts, 1)
	if err != nil {
		t.Fatal(err)
	}
	var se *ugo.ShapeError
	if err := hook.X0(context.Background(), hookAt([]int{1, 1, 3, 4}, 900), make([]float32, 12)); !errors.As(err, &se) {
		t.Errorf("an axis the factor does not divide: %v, want a *ugo.ShapeError", err)
	}
	three := opts
	three.Factors = []int{2, 2, 2}
	hook3, _ := BlockClamp(testSchedule, three, 1)
	if err := hook3.X0(context.Background(), hookAt([]int{1, 1, 4, 4}, 900), make([]float32, 16)); !errors.As(err, &se) {
		t.Errorf("three factors on a rank-4 sample: %v, want a *ugo.ShapeError", err)
	}
}
