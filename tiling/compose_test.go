package tiling

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"
	"pgregory.net/rapid"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/schedule"
)

// Upsample Guidance with its high-resolution call tiled equals untiled
// guidance for a pointwise model, up to float32 rounding, for every
// prediction type and factor.
func TestPropertyTiledUpsampleGuidance(t *testing.T) {
	s := schedule.Linear(1000, 1e-4, 0.02)
	n := 0
	rapid.Check(t, func(rt *rapid.T) {
		f := rapid.IntRange(1, 4).Draw(rt, "factor")
		size := [2]int{rapid.IntRange(2, 12).Draw(rt, "th"), rapid.IntRange(2, 12).Draw(rt, "tw")}
		h, w := f*rapid.IntRange(1, 12).Draw(rt, "lh"), f*rapid.IntRange(1, 12).Draw(rt, "lw")
		opts := guidance.DefaultUpsampleOptions()
		opts.Factors = []int{f, f}
		opts.Prediction = rapid.SampledFrom([]schedule.PredictionType{schedule.PredictEpsilon, schedule.PredictV, schedule.PredictSample}).Draw(rt, "prediction")
		to := Options{Size: size, Batch: rapid.IntRange(1, 3).Draw(rt, "batch"), Jitter: rapid.Bool().Draw(rt, "jitter")}
		tiles, err := Tiled(pointwise, to)
		if err != nil {
			rt.Fatal(err)
		}
		tiledUG, err := guidance.UpsampleHighLow(tiles, pointwise, s, opts)
		if err != nil {
			rt.Fatal(err)
		}
		plainUG, err := guidance.Upsample(pointwise, s, opts)
		if err != nil {
			rt.Fatal(err)
		}
		x := randTensor(rand.New(rand.NewPCG(rapid.Uint64().Draw(rt, "data"), 1)), 2, 2, h, w)
		ts := []float32{float32(rapid.IntRange(1, 999).Draw(rt, "t"))}
		got, want := newTensor(x.Shape()), newTensor(x.Shape())
		if err := tiledUG.PredictNoise(context.Background(), got, x, ts); err != nil {
			rt.Fatal(err)
		}
		if err := plainUG.PredictNoise(context.Background(), want, x, ts); err != nil {
			rt.Fatal(err)
		}
		for i, v := range want.Float32s() {
			if g := got.Float32s()[i]; math.Abs(float64(g-v)) > 1e-4*(1+math.Abs(float64(v))) {
				rt.Fatalf("%dx%d, factor %d, tiles %+v, %s: element %d is %v tiled, %v untiled", h, w, f, to, opts.Prediction, i, g, v)
			}
		}
		n++
	})
	t.Logf("%d cases", n)
}

// Tiled Upsample Guidance allocates nothing per call once its buffers
// exist, with tiles one after the other or several at once, jittered.
func TestTiledUpsampleGuidanceDoesNotAllocate(t *testing.T) {
	s := schedule.Linear(1000, 1e-4, 0.02)
	model := ugo.DenoiserFunc(func(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
		d := dst.Float32s()
		for i, v := range x.Float32s() {
			d[i] = v * 0.5
		}
		return nil
	})
	x := randTensor(rand.New(rand.NewPCG(1, 1)), 2, 4, 64, 64)
	dst := newTensor(x.Shape())
	for _, batch := range []int{1, 4} {
		tiles, err := Tiled(model, Options{Size: [2]int{16, 16}, Batch: batch, Jitter: batch > 1})
		if err != nil {
			t.Fatal(err)
		}
		opts := guidance.DefaultUpsampleOptions()
		opts.Factors = []int{4, 4}
		g, err := guidance.UpsampleHighLow(tiles, model, s, opts)
		if err != nil {
			t.Fatal(err)
		}
		ctx, ts := context.Background(), []float32{900}
		if err := g.PredictNoise(ctx, dst, x, ts); err != nil {
			t.Fatal(err)
		}
		if a := testing.AllocsPerRun(10, func() {
			if err := g.PredictNoise(ctx, dst, x, ts); err != nil {
				t.Fatal(err)
			}
		}); a != 0 && !raceEnabled {
			t.Errorf("batch %d: %v allocations per call, want 0", batch, a)
		}
	}
}
