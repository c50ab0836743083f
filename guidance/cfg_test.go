package guidance

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gorgonia.org/tensor"
	"pgregory.net/rapid"

	"github.com/ugo-diffusion/ugo"
)

func TestCFGCombines(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	x := randTensor(r, 2, 3, 4, 6)
	cond, uncond := pointwise{0.9, 0.4}, pointwise{0.5, -0.3}
	ec, _ := predict(cond, x, 400, 600)
	eu, _ := predict(uncond, x, 400, 600)
	tests := []struct {
		name  string
		scale float64
	}{{"zero", 0}, {"one", 1}, {"sd", 7.5}, {"negative", -2}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := predict(CFG(cond, uncond, tc.scale), x, 400, 600)
			if err != nil {
				t.Fatal(err)
			}
			for i := range got {
				want := float64(eu[i]) + tc.scale*float64(ec[i]-eu[i])
				if math.Abs(float64(got[i])-want) > 1e-5*(1+math.Abs(want)) {
					t.Fatalf("eps[%d] = %v, want %v", i, got[i], want)
				}
			}
		})
	}
}

func TestCFGErrors(t *testing.T) {
	boom := errors.New("boom")
	fail := ugo.DenoiserFunc(func(context.Context, *tensor.Dense, *tensor.Dense, []float32) error { return boom })
	ok := pointwise{1, 1}
	x := tensorOf(1, 1, 4, 4)
	tests := []struct {
		name string
		d    ugo.Denoiser
		msg  string
		is   error
	}{
		{"nil cond", CFG(nil, ok, 2), "nil model", nil},
		{"nil uncond", CFG(ok, nil, 2), "nil model", nil},
		{"NaN scale", CFG(ok, ok, math.NaN()), "scale", nil},
		{"cond fails", CFG(fail, ok, 2), "conditional", boom},
		{"uncond fails", CFG(ok, fail, 2), "unconditional", boom},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := predict(tc.d, x, 10)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want an error mentioning %q", err, tc.msg)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not wrap %v", err, tc.is)
			}
		})
	}
	if err := CFG(ok, ok, 2).PredictNoise(context.Background(), tensorOf(1, 1, 4, 4), tensorOf(1, 1, 4, 2), []float32{1}); err == nil {
		t.Error("mismatched shapes accepted")
	}
}

// TestPropertyUpsampleCommutesWithCFG checks that guiding the CFG
// combination equals combining the guided branches.
func TestPropertyUpsampleCommutesWithCFG(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		shape, factors := drawCase(rt)
		r := rand.New(rand.NewPCG(rapid.Uint64().Draw(rt, "seed"), 8))
		x := randTensor(r, shape...)
		ts := drawTimesteps(rt, shape[0])
		opts := DefaultUpsampleOptions()
		opts.Factors = factors
		opts.Theta = rapid.Float64Range(0, 2).Draw(rt, "theta")
		scale := rapid.Float64Range(-1, 10).Draw(rt, "scale")
		cond, uncond := pointwise{0.9, 0.4}, pointwise{0.5, -0.3}
		outer, _ := Upsample(CFG(cond, uncond, scale), testSchedule, opts)
		gc, _ := Upsample(cond, testSchedule, opts)
		gu, _ := Upsample(uncond, testSchedule, opts)
		a, err := predict(outer, x, ts...)
		if err != nil {
			rt.Fatal(err)
		}
		b, err := predict(CFG(gc, gu, scale), x, ts...)
		if err != nil {
			rt.Fatal(err)
		}
		for i := range a {
			if math.Abs(float64(a[i]-b[i])) > 1e-4*(1+math.Abs(float64(b[i]))) {
				rt.Fatalf("Upsample(CFG)[%d] = %v, CFG(Upsample) = %v", i, a[i], b[i])
			}
		}
	})
}

func TestCFGDoesNotAllocate(t *testing.T) {
	d := CFG(pointwise{1, 0.5}, pointwise{0.5, 1}, 5)
	x := randTensor(rand.New(rand.NewPCG(9, 9)), 2, 4, 16, 16)
	dst := tensorOf(2, 4, 16, 16)
	ts := []float32{800}
	ctx := context.Background()
	_ = d.PredictNoise(ctx, dst, x, ts)
	if allocs := testing.AllocsPerRun(50, func() { _ = d.PredictNoise(ctx, dst, x, ts) }); allocs != 0 {
		t.Errorf("%v allocations per CFG call, want 0", allocs)
	}
}
