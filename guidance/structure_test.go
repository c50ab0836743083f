package guidance

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"gorgonia.org/tensor"
	"pgregory.net/rapid"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/resize"
	"github.com/ugo-diffusion/ugo/schedule"
)

// fixed is a model whose output is a fixed tensor.
func fixed(out *tensor.Dense) ugo.Denoiser {
	return ugo.DenoiserFunc(func(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
		copy(dst.Float32s(), out.Float32s())
		return ctx.Err()
	})
}

// drawTensor draws a tensor of shape with values in [-3, 3].
func drawTensor(t *rapid.T, label string, shape ...int) *tensor.Dense {
	x := tensorOf(shape...)
	copy(x.Float32s(), rapid.SliceOfN(rapid.Float32Range(-3, 3), len(x.Float32s()), len(x.Float32s())).Draw(t, label))
	return x
}

// lowPassOf is LP as ScaleDiff defines it, built here from package resize
// alone: every plane resized by sf (round(sf*H) x round(sf*W), at least
// 1x1) with resize.AntialiasBilinear, then back with resize.Bilinear; sf 0
// is 0.25.
func lowPassOf(t interface{ Fatal(...any) }, x *tensor.Dense, sf float64) *tensor.Dense {
	if sf == 0 {
		sf = 0.25
	}
	s := x.Shape()
	h, w := s[len(s)-2], s[len(s)-1]
	lh, lw := max(1, int(math.Round(float64(h)*sf))), max(1, int(math.Round(float64(w)*sf)))
	down, err := resize.AntialiasBilinear.Plan(lh, lw, h, w)
	if err != nil {
		t.Fatal(err)
	}
	up, err := resize.Bilinear.Plan(h, w, lh, lw)
	if err != nil {
		t.Fatal(err)
	}
	planes := len(x.Float32s()) / (h * w)
	small := make([]float32, planes*lh*lw)
	out := tensorOf(s...)
	down.Scale(small, x.Float32s())
	up.Scale(out.Float32s(), small)
	return out
}

// x0Of returns the clean sample that the model output implies for x at
// signal level abar.
func x0Of(pred schedule.PredictionType, x, out []float32, abar float64) []float64 {
	sa, sb := math.Sqrt(abar), math.Sqrt(1-abar)
	x0 := make([]float64, len(x))
	for i := range x {
		switch pred {
		case schedule.PredictV:
			x0[i] = sa*float64(x[i]) - sb*float64(out[i])
		case schedule.PredictSample:
			x0[i] = float64(out[i])
		default:
			x0[i] = (float64(x[i]) - sb*float64(out[i])) / sa
		}
	}
	return x0
}

// The guided output implies x0^ + gamma_t (LP(ref) - LP(x0^)), for every
// prediction type, per batch element, with gamma_t linear between From and
// To.
func TestStructureGuidanceCorrectsX0(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		pred := rapid.SampledFrom([]schedule.PredictionType{"", schedule.PredictEpsilon, schedule.PredictV, schedule.PredictSample}).Draw(t, "prediction")
		n := rapid.IntRange(1, 3).Draw(t, "n")
		h := rapid.IntRange(4, 12).Draw(t, "h")
		w := rapid.IntRange(4, 12).Draw(t, "w")
		x := drawTensor(t, "x", n, 2, h, w)
		out := drawTensor(t, "out", n, 2, h, w)
		ref := drawTensor(t, "ref", n, 2, h, w)
		from := float32(rapid.IntRange(100, 999).Draw(t, "from"))
		to := float32(rapid.IntRange(0, int(from)).Draw(t, "to"))
		weight := rapid.SampledFrom([]float64{0, 0.5, 1, 2}).Draw(t, "weight")
		sf := rapid.SampledFrom([]float64{0, 0.5}).Draw(t, "sf")
		ts := make([]float32, n)
		for b := range ts {
			ts[b] = float32(rapid.Float64Range(1, 998).Draw(t, "t"))
		}
		g, err := StructureGuidance(fixed(out), testSchedule, ref, StructureOptions{Cutoff: sf, Weight: weight, From: from, To: to, Prediction: pred})
		if err != nil {
			t.Fatal(err)
		}
		dst := tensorOf(n, 2, h, w)
		if err := g.PredictNoise(context.Background(), dst, x, ts); err != nil {
			t.Fatal(err)
		}

		lpRef := lowPassOf(t, ref, sf)
		per := 2 * h * w
		wt := weight
		if wt == 0 {
			wt = 1
		}
		for b := range n {
			tb := float64(ts[b])
			gamma := wt
			if tb < float64(from) {
				gamma = wt * math.Max(0, tb-float64(to)) / (float64(from) - float64(to))
			}
			abar := testSchedule.AlphaBar(tb)
			xb := x.Float32s()[b*per : (b+1)*per]
			before := x0Of(pred, xb, out.Float32s()[b*per:(b+1)*per], abar)
			after := x0Of(pred, xb, dst.Float32s()[b*per:(b+1)*per], abar)
			b32 := tensorOf(1, 2, h, w)
			for i, v := range before {
				b32.Float32s()[i] = float32(v)
			}
			lpx := lowPassOf(t, b32, sf)
			// The float32 arithmetic of the output is amplified by
			// sqrt(abar/(1-abar)) when read back as x0.
			tol := 2e-5 * (1 + math.Sqrt(abar/(1-abar))) * (1 + math.Sqrt((1-abar)/abar))
			for i := range after {
				want := before[i] + gamma*float64(lpRef.Float32s()[b*per+i]-lpx.Float32s()[i])
				if math.Abs(after[i]-want) > tol*(1+math.Abs(want)) {
					t.Fatalf("%q element %d (t %v, gamma %v) x0[%d] = %v, want %v", pred, b, tb, gamma, i, after[i], want)
				}
			}
		}
	})
}

// Below To the model output passes through bit for bit, and so it does
// when the prediction already has the reference's low frequencies.
func TestStructureGuidancePassThrough(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	x, out, ref := randTensor(r, 2, 3, 16, 16), randTensor(r, 2, 3, 16, 16), randTensor(r, 2, 3, 16, 16)
	g, err := StructureGuidance(fixed(out), testSchedule, ref, StructureOptions{From: 800, To: 300})
	if err != nil {
		t.Fatal(err)
	}
	dst := tensorOf(2, 3, 16, 16)
	if err := g.PredictNoise(context.Background(), dst, x, []float32{300}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(out.Float32s(), dst.Float32s()) {
		t.Fatal("t = To (300) changed the prediction")
	}
	if err := g.PredictNoise(context.Background(), dst, x, []float32{0}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(out.Float32s(), dst.Float32s()) {
		t.Fatal("t = 0 changed the prediction")
	}
	// Element 0 below To, element 1 above: only element 1 changes.
	if err := g.PredictNoise(context.Background(), dst, x, []float32{100, 900}); err != nil {
		t.Fatal(err)
	}
	per := 3 * 16 * 16
	if !slices.Equal(out.Float32s()[:per], dst.Float32s()[:per]) {
		t.Fatal("element 0 (t = 100, below To) changed")
	}
	if slices.Equal(out.Float32s()[per:], dst.Float32s()[per:]) {
		t.Fatal("element 1 (t = 900, in the window) did not change")
	}

	// The reference is the clean sample the output implies: nothing to
	// correct.
	abar := testSchedule.AlphaBar(900)
	x0 := x0Of(schedule.PredictEpsilon, x.Float32s(), out.Float32s(), abar)
	same := tensorOf(2, 3, 16, 16)
	for i, v := range x0 {
		same.Float32s()[i] = float32(v)
	}
	g, err = StructureGuidance(fixed(out), testSchedule, same, StructureOptions{From: 900, To: 0})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.PredictNoise(context.Background(), dst, x, []float32{900}); err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(out.Float32s(), dst.Float32s()); !(d <= 1e-4) {
		t.Fatalf("a reference equal to the implied clean sample moved the prediction by %g", d)
	}
}

func TestStructureGuidanceErrors(t *testing.T) {
	ref := tensorOf(1, 1, 8, 8)
	m := fixed(tensorOf(1, 1, 8, 8))
	for name, tc := range map[string]struct {
		model ugo.Denoiser
		ref   *tensor.Dense
		opts  StructureOptions
	}{
		"nil model":       {nil, ref, StructureOptions{}},
		"nil ref":         {m, nil, StructureOptions{}},
		"rank 3 ref":      {m, tensorOf(1, 8, 8), StructureOptions{}},
		"negative weight": {m, ref, StructureOptions{Weight: -1}},
		"NaN weight":      {m, ref, StructureOptions{Weight: math.NaN()}},
		"From < To":       {m, ref, StructureOptions{From: 10, To: 20}},
		"bad cutoff":      {m, ref, StructureOptions{Cutoff: 2}},
		"bad prediction":  {m, ref, StructureOptions{Prediction: "noise"}},
	} {
		if _, err := StructureGuidance(tc.model, testSchedule, tc.ref, tc.opts); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if _, err := StructureGuidance(m, nil, ref, StructureOptions{}); err == nil {
		t.Error("nil schedule accepted")
	}

	g, err := StructureGuidance(m, testSchedule, ref, StructureOptions{From: 500})
	if err != nil {
		t.Fatal(err)
	}
	var se *ugo.ShapeError
	err = g.PredictNoise(context.Background(), tensorOf(1, 1, 8, 4), tensorOf(1, 1, 8, 4), []float32{600})
	if !errors.As(err, &se) {
		t.Errorf("shape other than the reference's: %v", err)
	}
	err = g.PredictNoise(context.Background(), tensorOf(1, 1, 8, 8), tensorOf(1, 1, 8, 4), []float32{600})
	if !errors.As(err, &se) {
		t.Errorf("dst and x differ: %v", err)
	}
	boom := errors.New("boom")
	g, err = StructureGuidance(ugo.DenoiserFunc(func(context.Context, *tensor.Dense, *tensor.Dense, []float32) error { return boom }),
		testSchedule, ref, StructureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.PredictNoise(context.Background(), tensorOf(1, 1, 8, 8), tensorOf(1, 1, 8, 8), []float32{600}); !errors.Is(err, boom) {
		t.Errorf("the model's error: %v, want %v", err, boom)
	}
}

func TestStructureGuidanceConcurrentAndAllocationFree(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	x, ref := randTensor(r, 2, 4, 16, 16), randTensor(r, 2, 4, 16, 16)
	g, err := StructureGuidance(pointwise{0.5, 0.3}, testSchedule, ref, StructureOptions{From: 999})
	if err != nil {
		t.Fatal(err)
	}
	want := tensorOf(2, 4, 16, 16)
	if err := g.PredictNoise(context.Background(), want, x, []float32{700}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dst := tensorOf(2, 4, 16, 16)
			for range 10 {
				if err := g.PredictNoise(context.Background(), dst, x, []float32{700}); err != nil {
					errs <- err
					return
				}
				if maxAbsDiff(dst.Float32s(), want.Float32s()) != 0 {
					errs <- errors.New("concurrent call differs")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if raceEnabled {
		return
	}
	dst, ts := tensorOf(2, 4, 16, 16), []float32{700}
	allocs := testing.AllocsPerRun(10, func() {
		if err := g.PredictNoise(context.Background(), dst, x, ts); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per call", allocs)
	}
}
