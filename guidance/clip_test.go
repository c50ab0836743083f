package guidance

import (
	"math"
	"math/rand/v2"
	"testing"

	"pgregory.net/rapid"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/internal/resample"
)

// impliedX0 returns (x - sqrt(1-abar) eps) / sqrt(abar) per batch element.
func impliedX0(x, eps []float32, n int, ts []float32) []float64 {
	per := len(x) / n
	out := make([]float64, len(x))
	for b := range n {
		ab := testSchedule.AlphaBar(float64(ugo.TimestepAt(ts, b)))
		for i := b * per; i < (b+1)*per; i++ {
			out[i] = (float64(x[i]) - math.Sqrt(1-ab)*float64(eps[i])) / math.Sqrt(ab)
		}
	}
	return out
}

// TestPropertyClipSampleRange checks that with ClipSampleRange the guided
// prediction implies a clean sample inside the range whose block means are
// the clamped block means of the unclipped guided prediction's, and that
// blocks already inside the range keep their prediction.
func TestPropertyClipSampleRange(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		shape, factors := drawCase(rt)
		plan, _ := resample.NewPooling(shape, factors)
		if plan.K() == 1 {
			return
		}
		r := rand.New(rand.NewPCG(rapid.Uint64().Draw(rt, "seed"), 3))
		x := randTensor(r, shape...)
		n := shape[0]
		// Timesteps where x0 is well conditioned in float32.
		ts := []float32{float32(rapid.Float64Range(0, 600).Draw(rt, "t"))}
		rng := rapid.Float64Range(0.5, 2).Draw(rt, "range")
		opts := DefaultUpsampleOptions()
		opts.Factors = factors
		free, _ := Upsample(pointwise{0.6, 0.4}, testSchedule, opts)
		opts.ClipSampleRange = rng
		clipped, _ := Upsample(pointwise{0.6, 0.4}, testSchedule, opts)
		epsFree, err := predict(free, x, ts...)
		if err != nil {
			rt.Fatal(err)
		}
		epsClip, err := predict(clipped, x, ts...)
		if err != nil {
			rt.Fatal(err)
		}
		xs := x.Float32s()
		x0Free, x0Clip := impliedX0(xs, epsFree, n, ts), impliedX0(xs, epsClip, n, ts)
		tol := 1e-4 * (1 + 1/math.Sqrt(testSchedule.AlphaBar(float64(ts[0]))))
		for i, v := range x0Clip {
			if math.Abs(v) > rng+tol {
				rt.Fatalf("implied x0[%d] = %v outside ±%v", i, v, rng)
			}
		}
		f32 := func(v []float64) []float32 {
			o := make([]float32, len(v))
			for i := range v {
				o[i] = float32(v[i])
			}
			return o
		}
		mFree, mClip := make([]float32, plan.LowLen()), make([]float32, plan.LowLen())

		plan.Pool(mFree, f32(x0Free), 1)
		plan.Pool(mClip, f32(x0Clip), 1)
		inRange := make([]float32, len(xs))
		maxDev := make([]float32, plan.LowLen())
		for i, v := range x0Free {
			if math.Abs(v) > rng {
				inRange[i] = 1
			}
		}
		plan.Pool(maxDev, inRange, 1)
		for b, m := range mFree {
			want := math.Min(math.Max(float64(m), -rng), rng)
			if math.Abs(float64(mClip[b])-want) > tol {
				rt.Fatalf("block %d: clipped mean %v, want clamp(%v) = %v", b, mClip[b], m, want)
			}
		}
		up := make([]float32, len(xs))
		plan.Repeat(up, maxDev)
		for i := range xs {
			if up[i] == 0 && epsClip[i] != epsFree[i] {
				rt.Fatalf("element %d in a block inside the range changed: %v -> %v", i, epsFree[i], epsClip[i])
			}
		}
	})
}
