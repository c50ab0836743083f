package guidance

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gorgonia.org/tensor"
	"pgregory.net/rapid"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/internal/resample"
	"github.com/ugo-diffusion/ugo/schedule"
)

var predictions = []schedule.PredictionType{schedule.PredictEpsilon, schedule.PredictV, schedule.PredictSample}

// implied returns the noise and the clean sample that the output m of a
// model predicting pred implies for the sample x at abar, from the
// definitions x = sqrt(abar) x0 + sqrt(1-abar) eps and v = sqrt(abar) eps -
// sqrt(1-abar) x0 (independently of the package's conversion code).
func implied(pred schedule.PredictionType, m, x, abar float64) (eps, x0 float64) {
	a, s := math.Sqrt(abar), math.Sqrt(1-abar)
	switch pred {
	case schedule.PredictV:
		return a*m + s*x, a*x - s*m
	case schedule.PredictSample:
		return (x - a*m) / s, m
	}
	return m, (x - s*m) / a
}

// pooledIdentityError samples one case and returns, per batch element, the
// worst violation of the guided prediction's defining identity, in units of
// its tolerance: with eps and x0 implied by each output (abar_t at the high
// resolution, abar_tau at the low one),
//
//	D(eps~) = (1-w) D(eps) + w eps_low/sqrt(k)
//	D(x0~)  = (1-w) D(x0)  + w x0_low
//
// (at w = 1 the pooled guided prediction is the low-resolution one). The
// second holds where tau matches SNR(tau) = k SNR(t) exactly (continuous
// matching, tau not clamped to the schedule's end), the first everywhere.
// modelPred is what the model predicts, guidedAs what Upsample is told.
func pooledIdentityError(rt *rapid.T, modelPred, guidedAs schedule.PredictionType) (worst float64, checked bool) {
	shape, factors := drawCase(rt)
	plan, _ := resample.NewPooling(shape, factors)
	if plan.K() == 1 {
		return 0, false
	}
	scheds := []*schedule.Schedule{testSchedule, schedule.ScaledLinear(1000, 0.00085, 0.012), schedule.SquaredCosCapV2(1000)}
	sched := scheds[rapid.IntRange(0, len(scheds)-1).Draw(rt, "schedule")]
	r := rand.New(rand.NewPCG(rapid.Uint64().Draw(rt, "seed"), 5))
	x := randTensor(r, shape...)
	ts := drawTimesteps(rt, shape[0])
	opts := DefaultUpsampleOptions()
	opts.Factors = factors
	opts.Prediction = guidedAs
	if !rapid.Bool().Draw(rt, "unit weight") {
		opts.Theta = rapid.Float64Range(-1, 2).Draw(rt, "theta")
	}
	if rapid.Bool().Draw(rt, "nearest") {
		opts.TimeMatching = schedule.Nearest
	}
	model := pointwise{0.6, 0.4}
	m := &spy{model: model, high: shape}
	d, err := Upsample(m, sched, opts)
	if err != nil {
		rt.Fatal(err)
	}
	got, err := predict(d, x, ts...)
	if err != nil {
		rt.Fatal(err)
	}
	plain, _ := predict(model, x, ts...)
	if opts.Theta == 0 {
		if maxAbsDiff(got, plain) != 0 {
			rt.Fatal("theta = 0 changed the prediction")
		}
		return 0, false
	}
	lowShape := plan.LowShape(nil, len(shape), shape[0], shape[1])
	lowOut := tensorOf(lowShape...)
	lowX := tensor.New(tensor.WithShape(lowShape...), tensor.WithBacking(m.lastLow))
	if err := model.PredictNoise(context.Background(), lowOut, lowX, m.lastTau); err != nil {
		rt.Fatal(err)
	}

	k := float64(plan.K())
	w := opts.Theta
	one := []int{1}
	one = append(one, shape[1:]...)
	p1, _ := resample.NewPooling(one, factors)
	hi, lo := p1.HighLen(), p1.LowLen()
	xs, ls, lx := x.Float32s(), lowOut.Float32s(), lowX.Float32s()
	for b := range shape[0] {
		abT := sched.AlphaBar(float64(ugo.TimestepAt(ts, b)))
		abTau := sched.AlphaBar(float64(ugo.TimestepAt(m.lastTau, b)))
		// float32 outputs carry a relative error of about 1e-7, which the
		// conversions amplify by up to 1/sqrt(abar) or 1/sqrt(1-abar).
		cond := 1 / min(math.Sqrt(abT), math.Sqrt(1-abT), math.Sqrt(abTau), math.Sqrt(1-abTau))
		tol := 2e-5 * cond
		// The clean samples agree where tau matches the SNR exactly:
		// continuous matching, inside the schedule (not clamped to 0).
		matched := opts.TimeMatching == schedule.Continuous && k*sched.SNR(float64(ugo.TimestepAt(ts, b))) < sched.SNR(0)
		epsG, x0G := make([]float32, hi), make([]float32, hi)
		epsP, x0P := make([]float32, hi), make([]float32, hi)
		for i := range hi {
			j := b*hi + i
			e, z := implied(modelPred, float64(got[j]), float64(xs[j]), abT)
			epsG[i], x0G[i] = float32(e), float32(z)
			e, z = implied(modelPred, float64(plain[j]), float64(xs[j]), abT)
			epsP[i], x0P[i] = float32(e), float32(z)
		}
		pool := func(v []float32) []float32 {
			o := make([]float32, lo)
			p1.Pool(o, v, 1)
			return o
		}
		dEpsG, dX0G, dEpsP, dX0P := pool(epsG), pool(x0G), pool(epsP), pool(x0P)
		for i := range lo {
			eLow, zLow := implied(modelPred, float64(ls[b*lo+i]), float64(lx[b*lo+i]), abTau)
			checks := [][2]float64{{float64(dEpsG[i]), (1-w)*float64(dEpsP[i]) + w*eLow/math.Sqrt(k)}}
			if matched {
				checks = append(checks, [2]float64{float64(dX0G[i]), (1-w)*float64(dX0P[i]) + w*zLow})
			}
			for _, c := range checks {
				worst = max(worst, math.Abs(c[0]-c[1])/(tol*(1+math.Abs(c[1]))))
			}
		}
	}
	return worst, w != 0
}

// TestPropertyPooledIdentityEveryPrediction checks, for models predicting
// the noise, the velocity and the clean sample, that the guided output
// implies a noise and a clean sample whose pooled values are those of the
// low-resolution call at w = 1 (and the affine combination otherwise).
func TestPropertyPooledIdentityEveryPrediction(t *testing.T) {
	for _, pred := range predictions {
		t.Run(string(pred), func(t *testing.T) {
			rapid.Check(t, func(rt *rapid.T) {
				if worst, _ := pooledIdentityError(rt, pred, pred); worst > 1 {
					rt.Fatalf("pooled identity violated by %.3g tolerances", worst)
				}
			})
		})
	}
}

// TestPredictionMismatchBreaksIdentity shows that the identity test has
// teeth: guiding velocity or clean-sample outputs as if they were noise
// (what Upsample did before it knew the prediction type) breaks it by far
// more than the tolerance.
func TestPredictionMismatchBreaksIdentity(t *testing.T) {
	for _, pred := range []schedule.PredictionType{schedule.PredictV, schedule.PredictSample} {
		t.Run(string(pred), func(t *testing.T) {
			var worst float64
			cases := 0
			rapid.Check(t, func(rt *rapid.T) {
				if w, ok := pooledIdentityError(rt, pred, schedule.PredictEpsilon); ok {
					worst = max(worst, w)
					cases++
				}
			})
			t.Logf("worst violation %.3g tolerances over %d cases", worst, cases)
			if cases == 0 || worst < 100 {
				t.Errorf("%s outputs guided as noise: worst violation %.3g tolerances over %d cases, want > 100", pred, worst, cases)
			}
		})
	}
}

// TestUndeterminedPredictionPassesThrough checks the degenerate times: a
// velocity at abar = 0 (zero terminal SNR) and a clean sample at abar = 1
// say nothing about the noise, and the model's output is returned as it
// is, finite.
func TestUndeterminedPredictionPassesThrough(t *testing.T) {
	zsnr := testSchedule.RescaleZeroTerminalSNR()
	if ab := zsnr.AlphaBar(999); ab != 0 {
		t.Fatalf("zero-SNR schedule abar(999) = %v, want 0", ab)
	}
	x := randTensor(rand.New(rand.NewPCG(1, 7)), 2, 1, 4, 4)
	opts := DefaultUpsampleOptions()
	opts.Prediction = schedule.PredictV
	d, err := Upsample(pointwise{0.6, 0.4}, zsnr, opts)
	if err != nil {
		t.Fatal(err)
	}
	got, err := predict(d, x, 999)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := predict(pointwise{0.6, 0.4}, x, 999)
	if diff := maxAbsDiff(got, plain); diff != 0 || math.IsNaN(diff) {
		t.Errorf("v at abar = 0: output differs from the model's by %v, want the model's", diff)
	}
	// Elsewhere on the same schedule the guidance acts.
	got, _ = predict(d, x, 900)
	plain, _ = predict(pointwise{0.6, 0.4}, x, 900)
	if maxAbsDiff(got, plain) == 0 {
		t.Error("v at t = 900: guidance changed nothing")
	}
}

func TestUpsamplePredictionOption(t *testing.T) {
	for _, p := range append(predictions, "") {
		if _, err := Upsample(pointwise{1, 1}, testSchedule, UpsampleOptions{Prediction: p}); err != nil {
			t.Errorf("Prediction %q: %v", p, err)
		}
	}
	_, err := Upsample(pointwise{1, 1}, testSchedule, UpsampleOptions{Prediction: "flow"})
	if err == nil || !strings.Contains(err.Error(), `unknown Prediction "flow"`) {
		t.Errorf("Prediction flow: error %v", err)
	}
}

// TestConvertedGuidanceDoesNotAllocate checks the no-allocation promise for
// the converting path.
func TestConvertedGuidanceDoesNotAllocate(t *testing.T) {
	for _, pred := range []schedule.PredictionType{schedule.PredictV, schedule.PredictSample} {
		opts := DefaultUpsampleOptions()
		opts.Prediction = pred
		opts.Sequential = true
		d, _ := Upsample(pointwise{0.6, 0.4}, testSchedule, opts)
		x := randTensor(rand.New(rand.NewPCG(1, 8)), 2, 2, 8, 8)
		dst := tensorOf(2, 2, 8, 8)
		ts := []float32{500, 300}
		ctx := context.Background()
		if err := d.PredictNoise(ctx, dst, x, ts); err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(20, func() { _ = d.PredictNoise(ctx, dst, x, ts) }); n != 0 {
			t.Errorf("%s: %v allocations per call", pred, n)
		}
	}
}
