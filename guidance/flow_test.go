package guidance

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"
	"pgregory.net/rapid"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/internal/resample"
	"github.com/ugo-diffusion/ugo/schedule"
)

// flowImplied returns the noise and the clean sample that the velocity v
// of a rectified-flow model implies for x at level s, from the definitions
// x = (1-s) x0 + s eps and v = eps - x0 (independently of the package's
// code).
func flowImplied(v, x, s float64) (eps, x0 float64) {
	return x + (1-s)*v, x - s*v
}

// flowIdentityError samples one case of a flow model guided as guidedAs
// and returns the worst violation, in tolerances, of
//
//	D(eps~) = (1-w) D(eps) + w eps_low/sqrt(k)
//	D(x0~)  = (1-w) D(x0)  + w x0_low
//
// with eps and x0 implied by each velocity (level s = t/T at the high
// resolution, tau/T and the low-resolution input at the low one). The
// second needs tau matched exactly (continuous matching, or s = 1).
// Levels 0 and 1 (the first level of a flow run) are drawn often.
func flowIdentityError(rt *rapid.T, guidedAs schedule.PredictionType) (worst float64, checked bool) {
	shape, factors := drawCase(rt)
	plan, _ := resample.NewPooling(shape, factors)
	if plan.K() == 1 {
		return 0, false
	}
	T := float64(rapid.SampledFrom([]int{1000, 500}).Draw(rt, "T"))
	sched := schedule.Linear(int(T), 0.0001, 0.02) // only its length matters for a flow model
	r := rand.New(rand.NewPCG(rapid.Uint64().Draw(rt, "seed"), 9))
	x := randTensor(r, shape...)
	ts := make([]float32, shape[0])
	for i := range ts {
		switch rapid.IntRange(0, 3).Draw(rt, "level kind") {
		case 0:
			ts[i] = float32(T)
		case 1:
			ts[i] = 0
		default:
			ts[i] = float32(rapid.Float64Range(0, T).Draw(rt, "t"))
		}
	}
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
	if opts.Theta == 0 || m.lowCalls.Load() == 0 {
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
	one := append([]int{1}, shape[1:]...)
	p1, _ := resample.NewPooling(one, factors)
	hi, lo := p1.HighLen(), p1.LowLen()
	xs, ls, lx := x.Float32s(), lowOut.Float32s(), lowX.Float32s()
	pool := func(v []float32) []float32 {
		o := make([]float32, lo)
		p1.Pool(o, v, 1)
		return o
	}
	for b := range shape[0] {
		s := float64(ts[b]) / T
		sTau := float64(m.lastTau[b]) / T
		matched := opts.TimeMatching == schedule.Continuous || s == 1
		epsG, x0G := make([]float32, hi), make([]float32, hi)
		epsP, x0P := make([]float32, hi), make([]float32, hi)
		for i := range hi {
			j := b*hi + i
			e, z := flowImplied(float64(got[j]), float64(xs[j]), s)
			epsG[i], x0G[i] = float32(e), float32(z)
			e, z = flowImplied(float64(plain[j]), float64(xs[j]), s)
			epsP[i], x0P[i] = float32(e), float32(z)
		}
		dEpsG, dX0G, dEpsP, dX0P := pool(epsG), pool(x0G), pool(epsP), pool(x0P)
		for i := range lo {
			eLow, zLow := flowImplied(float64(ls[b*lo+i]), float64(lx[b*lo+i]), sTau)
			checks := [][2]float64{{float64(dEpsG[i]), (1-w)*float64(dEpsP[i]) + w*eLow/math.Sqrt(k)}}
			if matched {
				checks = append(checks, [2]float64{float64(dX0G[i]), (1-w)*float64(dX0P[i]) + w*zLow})
			}
			for _, c := range checks {
				worst = max(worst, math.Abs(c[0]-c[1])/(3e-5*(1+math.Abs(c[1]))))
			}
		}
	}
	return worst, true
}

// TestPropertyFlowPooledIdentity checks that Upsample with PredictFlow
// guides a rectified-flow model in eps-space: the guided velocity implies
// a noise and a clean sample whose pooled values are the low-resolution
// call's at w = 1 (and the affine combination otherwise), at every level,
// s = 1 included.
func TestPropertyFlowPooledIdentity(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		if worst, _ := flowIdentityError(rt, schedule.PredictFlow); worst > 1 {
			rt.Fatalf("pooled identity violated by %.3g tolerances", worst)
		}
	})
}

// TestFlowGuidedAsOtherTypesBreaksIdentity shows that the flow identity
// test has teeth: the same velocity guided as noise or as a
// variance-preserving v breaks it by far more than the tolerance.
func TestFlowGuidedAsOtherTypesBreaksIdentity(t *testing.T) {
	for _, pred := range []schedule.PredictionType{schedule.PredictEpsilon, schedule.PredictV} {
		t.Run(string(pred), func(t *testing.T) {
			var worst float64
			cases := 0
			rapid.Check(t, func(rt *rapid.T) {
				if w, ok := flowIdentityError(rt, pred); ok {
					worst = max(worst, w)
					cases++
				}
			})
			t.Logf("worst violation %.3g tolerances over %d cases", worst, cases)
			if cases == 0 || worst < 100 {
				t.Errorf("flow outputs guided as %s: worst violation %.3g tolerances over %d cases, want > 100", pred, worst, cases)
			}
		})
	}
}

// TestFlowMatchedTimeAndScale checks tau and the input scale of the
// low-resolution call against the closed forms, at levels where they are
// known exactly: s = 1 (tau = 1, c = sqrt(k)), s = 0 (tau = 0, c = 1) and
// s = 1/2 at 2x2 (tau = 1/3, c = 4/3).
func TestFlowMatchedTimeAndScale(t *testing.T) {
	for _, tc := range []struct {
		t, tau, scale float32
	}{{1000, 1000, 2}, {0, 0, 1}, {500, 1000.0 / 3, 4.0 / 3}} {
		m := &spy{model: pointwise{0.6, 0.4}, high: []int{1, 1, 4, 4}}
		opts := DefaultUpsampleOptions()
		opts.Prediction = schedule.PredictFlow
		d, err := Upsample(m, testSchedule, opts)
		if err != nil {
			t.Fatal(err)
		}
		x := randTensor(rand.New(rand.NewPCG(1, 2)), 1, 1, 4, 4)
		if _, err := predict(d, x, tc.t); err != nil {
			t.Fatal(err)
		}
		if math.Abs(float64(m.lastTau[0]-tc.tau)) > 1e-4 {
			t.Errorf("t = %v: tau = %v, want %v", tc.t, m.lastTau[0], tc.tau)
		}
		xs := x.Float32s()
		mean := (xs[0] + xs[1] + xs[4] + xs[5]) / 4
		if got := m.lastLow[0]; math.Abs(float64(got-tc.scale*mean)) > 1e-5 {
			t.Errorf("t = %v: low input %v, want %v * %v", tc.t, got, tc.scale, mean)
		}
	}
}

// TestFlowGuidanceAtFirstLevel checks that guidance acts, finitely, at s =
// 1, the first level of every flow run, where the noise that a velocity
// implies is x itself whatever the velocity; and that the ablations, whose
// eps-space term is 0/0 there, return the model's output unguided.
func TestFlowGuidanceAtFirstLevel(t *testing.T) {
	x := randTensor(rand.New(rand.NewPCG(3, 4)), 2, 1, 8, 8)
	plain, _ := predict(pointwise{0.6, 0.4}, x, 1000)
	for _, tc := range []struct {
		name   string
		modify func(*UpsampleOptions)
		guided bool
	}{
		{"continuous", func(*UpsampleOptions) {}, true},
		{"nearest", func(o *UpsampleOptions) { o.TimeMatching = schedule.Nearest }, true},
		{"no power adjustment", func(o *UpsampleOptions) { o.NoPowerAdjustment = true }, false},
		{"no time adjustment", func(o *UpsampleOptions) { o.NoTimeAdjustment = true }, false},
	} {
		opts := DefaultUpsampleOptions()
		opts.Prediction = schedule.PredictFlow
		tc.modify(&opts)
		d, err := Upsample(pointwise{0.6, 0.4}, testSchedule, opts)
		if err != nil {
			t.Fatal(err)
		}
		got, err := predict(d, x, 1000)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if diff := maxAbsDiff(got, plain); (diff != 0) != tc.guided || math.IsNaN(diff) {
			t.Errorf("%s: guided output differs from the model's by %v, want guided %v", tc.name, diff, tc.guided)
		}
	}
}

// TestFlowGuidanceDoesNotAllocate checks the no-allocation promise for the
// flow path.
func TestFlowGuidanceDoesNotAllocate(t *testing.T) {
	opts := DefaultUpsampleOptions()
	opts.Prediction = schedule.PredictFlow
	opts.Sequential = true
	d, _ := Upsample(pointwise{0.6, 0.4}, testSchedule, opts)
	x := randTensor(rand.New(rand.NewPCG(1, 8)), 2, 2, 8, 8)
	dst := tensorOf(2, 2, 8, 8)
	ts := []float32{1000, 300}
	ctx := context.Background()
	if err := d.PredictNoise(ctx, dst, x, ts); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(20, func() { _ = d.PredictNoise(ctx, dst, x, ts) }); n != 0 {
		t.Errorf("%v allocations per call", n)
	}
	if ugo.FirstNonFinite(dst.Float32s()) >= 0 {
		t.Error("non-finite guided velocity")
	}
}
