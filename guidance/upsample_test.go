package guidance

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"gorgonia.org/tensor"
	"pgregory.net/rapid"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/internal/resample"
	"github.com/ugo-diffusion/ugo/schedule"
)

func TestUpsampleOptionErrors(t *testing.T) {
	good := DefaultUpsampleOptions()
	with := func(f func(*UpsampleOptions)) UpsampleOptions {
		o := good
		f(&o)
		return o
	}
	tests := []struct {
		name  string
		model ugo.Denoiser
		s     *schedule.Schedule
		opts  UpsampleOptions
		msg   string
	}{
		{"nil model", nil, testSchedule, good, "nil model"},
		{"nil schedule", pointwise{1, 1}, nil, good, "nil schedule"},
		{"empty factors", pointwise{1, 1}, testSchedule, with(func(o *UpsampleOptions) { o.Factors = []int{} }), "0 factors"},
		{"four factors", pointwise{1, 1}, testSchedule, with(func(o *UpsampleOptions) { o.Factors = []int{1, 2, 2, 2} }), "4 factors"},
		{"zero factor", pointwise{1, 1}, testSchedule, with(func(o *UpsampleOptions) { o.Factors = []int{2, 0} }), "at least 1"},
		{"NaN theta", pointwise{1, 1}, testSchedule, with(func(o *UpsampleOptions) { o.Theta = math.NaN() }), "Theta"},
		{"Inf theta", pointwise{1, 1}, testSchedule, with(func(o *UpsampleOptions) { o.Theta = math.Inf(-1) }), "Theta"},
		{"eta above 1", pointwise{1, 1}, testSchedule, with(func(o *UpsampleOptions) { o.Eta = 1.5 }), "Eta"},
		{"negative eta", pointwise{1, 1}, testSchedule, with(func(o *UpsampleOptions) { o.Eta = -0.1 }), "Eta"},
		{"NaN eta", pointwise{1, 1}, testSchedule, with(func(o *UpsampleOptions) { o.Eta = math.NaN() }), "Eta"},
		{"bad matching", pointwise{1, 1}, testSchedule, with(func(o *UpsampleOptions) { o.TimeMatching = 7 }), "TimeMatching"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Upsample(tc.model, tc.s, tc.opts)
			if err == nil || d != nil {
				t.Fatalf("Upsample succeeded, want an error mentioning %q", tc.msg)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not mention %q", err, tc.msg)
			}
		})
	}
}

func TestUpsampleShapeErrors(t *testing.T) {
	tests := []struct {
		name    string
		factors []int
		x, dst  *tensor.Dense
		t       []float32
		msg     string
	}{
		{"H not divisible", []int{2, 2}, tensorOf(1, 1, 7, 8), tensorOf(1, 1, 7, 8), []float32{500}, "axis H (size 7) divisible by its upsample factor 2"},
		{"W not divisible", []int{1, 3}, tensorOf(1, 1, 8, 8), tensorOf(1, 1, 8, 8), []float32{500}, "axis W (size 8) divisible by its upsample factor 3"},
		{"F not divisible", []int{2, 1, 1}, tensorOf(1, 1, 3, 4, 4), tensorOf(1, 1, 3, 4, 4), []float32{500}, "axis F (size 3)"},
		{"F factor on an image", []int{2, 2, 2}, tensorOf(1, 1, 8, 8), tensorOf(1, 1, 8, 8), []float32{500}, "rank 5"},
		{"shape mismatch", []int{2, 2}, tensorOf(1, 1, 8, 8), tensorOf(1, 1, 8, 4), []float32{500}, "shape"},
		{"rank 3", []int{2, 2}, tensorOf(1, 8, 8), tensorOf(1, 8, 8), []float32{500}, "rank"},
		{"nil x", []int{2, 2}, nil, tensorOf(1, 1, 8, 8), []float32{500}, "nil"},
		{"float64", []int{2, 2}, tensor.New(tensor.WithShape(1, 1, 2, 2), tensor.WithBacking(make([]float64, 4))), tensorOf(1, 1, 2, 2), []float32{500}, "float32"},
		{"too many timesteps", []int{2, 2}, tensorOf(2, 1, 8, 8), tensorOf(2, 1, 8, 8), []float32{1, 2, 3}, "timesteps"},
		{"NaN timestep", []int{2, 2}, tensorOf(1, 1, 8, 8), tensorOf(1, 1, 8, 8), []float32{float32(math.NaN())}, "finite"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := DefaultUpsampleOptions()
			opts.Factors = tc.factors
			d, err := Upsample(pointwise{1, 1}, testSchedule, opts)
			if err != nil {
				t.Fatal(err)
			}
			err = d.PredictNoise(context.Background(), tc.dst, tc.x, tc.t)
			if err == nil {
				t.Fatal("PredictNoise succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not mention %q", err, tc.msg)
			}
		})
	}
	// Divisibility errors are *ugo.ShapeError.
	d, _ := Upsample(pointwise{1, 1}, testSchedule, DefaultUpsampleOptions())
	var se *ugo.ShapeError
	if err := d.PredictNoise(context.Background(), tensorOf(1, 1, 6, 5), tensorOf(1, 1, 6, 5), []float32{1}); !errors.As(err, &se) {
		t.Errorf("divisibility error %v is not a *ugo.ShapeError", err)
	}
}

// TestUpsampleSkipsLowCall checks, with a counting model, that the
// low-resolution call happens exactly when some w_t != 0, and that the
// result is then the plain prediction bit for bit.
func TestUpsampleSkipsLowCall(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	x := randTensor(r, 2, 3, 8, 8)
	tests := []struct {
		name   string
		theta  float64
		eta    float64
		t      []float32
		guided bool
	}{
		{"theta 0", 0, 1, []float32{999}, false},
		{"eta 0", 1, 0, []float32{999}, false},
		{"before window", 1, 0.3, []float32{699}, false},
		{"window edge", 1, 0.3, []float32{700}, true},
		{"in window", 1, 0.3, []float32{900}, true},
		{"always", 1.2, 1, []float32{0}, true},
		{"per element, none on", 1, 0.5, []float32{100, 499.5}, false},
		{"per element, one on", 1, 0.5, []float32{100, 500}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &spy{model: pointwise{0.7, 0.3}, high: []int{2, 3, 8, 8}}
			opts := DefaultUpsampleOptions()
			opts.Theta, opts.Eta = tc.theta, tc.eta
			d, err := Upsample(m, testSchedule, opts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := predict(d, x, tc.t...)
			if err != nil {
				t.Fatal(err)
			}
			plain, _ := predict(pointwise{0.7, 0.3}, x, tc.t...)
			if h, l := m.highCalls.Load(), m.lowCalls.Load(); h != 1 || (l == 1) != tc.guided || l > 1 {
				t.Fatalf("high calls %d, low calls %d; guided %v", h, l, tc.guided)
			}
			same := maxAbsDiff(got, plain) == 0
			if !tc.guided && !same {
				t.Error("unguided result differs from the plain prediction")
			}
			if tc.guided && same {
				t.Error("guided result equals the plain prediction")
			}
		})
	}
}

func TestUpsamplePerElementWindow(t *testing.T) {
	// Element 0 is outside the window and must be untouched bit for bit;
	// element 1 is guided; each gets its own tau.
	r := rand.New(rand.NewPCG(2, 2))
	x := randTensor(r, 2, 2, 8, 8)
	m := &spy{model: pointwise{0.7, 0.3}, high: []int{2, 2, 8, 8}}
	opts := DefaultUpsampleOptions()
	opts.Eta = 0.5
	d, _ := Upsample(m, testSchedule, opts)
	ts := []float32{200, 800}
	got, err := predict(d, x, ts...)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := predict(pointwise{0.7, 0.3}, x, ts...)
	half := len(got) / 2
	if maxAbsDiff(got[:half], plain[:half]) != 0 {
		t.Error("element outside the window was modified")
	}
	if maxAbsDiff(got[half:], plain[half:]) == 0 {
		t.Error("element inside the window was not guided")
	}
	for i, tt := range ts {
		if want := float32(testSchedule.MatchedTime(float64(tt), 4, schedule.Continuous)); m.lastTau[i] != want {
			t.Errorf("tau[%d] = %v, want %v", i, m.lastTau[i], want)
		}
	}
}

func TestUpsampleAdjustmentSwitches(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	x := randTensor(r, 1, 1, 8, 12)
	plan, _ := resample.NewPooling([]int{1, 1, 8, 12}, []int{2, 3})
	pooled := make([]float32, plan.LowLen())
	plan.Pool(pooled, x.Float32s(), 1)
	const tt = 640
	k := 6.0
	tests := []struct {
		name      string
		mutate    func(*UpsampleOptions)
		wantTau   float32
		wantScale float32
	}{
		{"both", func(*UpsampleOptions) {}, float32(testSchedule.MatchedTime(tt, k, schedule.Continuous)), float32(1 / math.Sqrt(testSchedule.PowerFactor(tt, k)))},
		{"nearest", func(o *UpsampleOptions) { o.TimeMatching = schedule.Nearest }, float32(testSchedule.MatchedTime(tt, k, schedule.Nearest)), float32(1 / math.Sqrt(testSchedule.PowerFactor(tt, k)))},
		{"no time", func(o *UpsampleOptions) { o.NoTimeAdjustment = true }, tt, float32(1 / math.Sqrt(testSchedule.PowerFactor(tt, k)))},
		{"no power", func(o *UpsampleOptions) { o.NoPowerAdjustment = true }, float32(testSchedule.MatchedTime(tt, k, schedule.Continuous)), 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &spy{model: pointwise{1, 0}, high: []int{1, 1, 8, 12}}
			opts := DefaultUpsampleOptions()
			opts.Factors = []int{2, 3}
			tc.mutate(&opts)
			d, _ := Upsample(m, testSchedule, opts)
			if _, err := predict(d, x, tt); err != nil {
				t.Fatal(err)
			}
			if m.lastTau[0] != tc.wantTau {
				t.Errorf("tau = %v, want %v", m.lastTau[0], tc.wantTau)
			}
			if tc.name == "nearest" && tc.wantTau != float32(math.Round(float64(tc.wantTau))) {
				t.Errorf("nearest tau %v is not a training step", tc.wantTau)
			}
			for i, v := range pooled {
				if want := v * tc.wantScale; math.Abs(float64(m.lastLow[i]-want)) > 1e-6*(1+math.Abs(float64(want))) {
					t.Fatalf("low input[%d] = %v, want %v", i, m.lastLow[i], want)
				}
			}
		})
	}
}

func TestUpsampleModelErrors(t *testing.T) {
	boom := errors.New("boom")
	x := tensorOf(1, 1, 4, 4)
	failing := func(onLow bool) ugo.Denoiser {
		return ugo.DenoiserFunc(func(ctx context.Context, dst, x *tensor.Dense, tt []float32) error {
			if (x.Shape()[2] == 2) == onLow {
				return boom
			}
			return nil
		})
	}
	for _, onLow := range []bool{false, true} {
		d, _ := Upsample(failing(onLow), testSchedule, DefaultUpsampleOptions())
		if _, err := predict(d, x, 500); !errors.Is(err, boom) {
			t.Errorf("failure on low=%v: got %v, want boom", onLow, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d, _ := Upsample(pointwise{1, 1}, testSchedule, DefaultUpsampleOptions())
	if err := d.PredictNoise(ctx, tensorOf(1, 1, 4, 4), x, []float32{500}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v", err)
	}
	// A panic in the concurrent low-resolution call reaches the caller.
	panicky := ugo.DenoiserFunc(func(ctx context.Context, dst, x *tensor.Dense, tt []float32) error {
		if x.Shape()[2] == 2 {
			panic("low panic")
		}
		return nil
	})
	d, _ = Upsample(panicky, testSchedule, DefaultUpsampleOptions())
	func() {
		defer func() {
			if r := recover(); r != "low panic" {
				t.Errorf("recovered %v, want the model's panic", r)
			}
		}()
		_, _ = predict(d, x, 500)
	}()
}

// TestUpsampleKIsOne checks that factors of 1 give the plain prediction, bit
// for bit through the public path, and to rounding when the guidance
// arithmetic is forced to run.
func TestUpsampleKIsOne(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	for _, factors := range [][]int{{1, 1}, {1}, {1, 1, 1}} {
		x := randTensor(r, 2, 2, 1, 6, 6)
		opts := DefaultUpsampleOptions()
		opts.Factors = factors
		m := &spy{model: pointwise{0.5, 0.5}, high: []int{-1}}
		d, _ := Upsample(m, testSchedule, opts)
		got, _ := predict(d, x, 300, 900)
		plain, _ := predict(pointwise{0.5, 0.5}, x, 300, 900)
		if maxAbsDiff(got, plain) != 0 || m.lowCalls.Load() != 1 {
			t.Errorf("factors %v: k = 1 is not the identity (diff %v, calls %d)", factors, maxAbsDiff(got, plain), m.lowCalls.Load())
		}
		d.(*upsampler).forceGuide = true
		forced, _ := predict(d, x, 300, 900)
		if diff := maxAbsDiff(forced, plain); diff > 1e-5 || m.lowCalls.Load() != 3 {
			t.Errorf("factors %v: forced guidance with k = 1 differs by %v (calls %d)", factors, diff, m.lowCalls.Load())
		}
	}
}

// drawCase draws a sample shape and factors that divide it.
func drawCase(t *rapid.T) (shape, factors []int) {
	rank := rapid.IntRange(4, 5).Draw(t, "rank")
	nf := 2
	if rank == 5 && rapid.Bool().Draw(t, "temporal") {
		nf = 3
	}
	shape = []int{rapid.IntRange(1, 3).Draw(t, "n"), rapid.IntRange(1, 3).Draw(t, "c")}
	spatial := make([]int, rank-2)
	factors = make([]int, nf)
	for i := range spatial {
		f := 1
		if j := i - (rank - 2 - nf); j >= 0 {
			f = rapid.IntRange(1, 3).Draw(t, fmt.Sprintf("f%d", i))
			factors[j] = f
		}
		spatial[i] = f * rapid.IntRange(1, 4).Draw(t, fmt.Sprintf("m%d", i))
	}
	return append(shape, spatial...), factors
}

func drawTimesteps(t *rapid.T, n int) []float32 {
	if rapid.Bool().Draw(t, "broadcast") {
		return []float32{float32(rapid.Float64Range(0, 999).Draw(t, "t"))}
	}
	ts := make([]float32, n)
	for i := range ts {
		ts[i] = float32(rapid.Float64Range(0, 999).Draw(t, fmt.Sprintf("t%d", i)))
	}
	return ts
}

// consistent is a resolution-consistent oracle: at the high-resolution shape
// it predicts a fixed tensor h, at the low-resolution shape sqrt(k)*D(h).
type consistent struct {
	high    []int
	h, lowH []float32
}

func (m *consistent) PredictNoise(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
	if slices.Equal([]int(x.Shape()), []int(m.high)) {
		copy(dst.Float32s(), m.h)
	} else {
		copy(dst.Float32s(), m.lowH)
	}
	return nil
}

func TestPropertyConsistentModelIsUnchanged(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		shape, factors := drawCase(rt)
		plan, err := resample.NewPooling(shape, factors)
		if err != nil {
			rt.Fatal(err)
		}
		r := rand.New(rand.NewPCG(rapid.Uint64().Draw(rt, "seed"), 1))
		h := randTensor(r, shape...).Float32s()
		lowH := make([]float32, plan.LowLen())
		plan.Pool(lowH, h, float32(math.Sqrt(float64(plan.K()))))
		opts := DefaultUpsampleOptions()
		opts.Factors = factors
		opts.Theta = rapid.Float64Range(-2, 3).Draw(rt, "theta")
		d, _ := Upsample(&consistent{high: shape, h: h, lowH: lowH}, testSchedule, opts)
		got, err := predict(d, randTensor(r, shape...), drawTimesteps(rt, shape[0])...)
		if err != nil {
			rt.Fatal(err)
		}
		if diff := maxAbsDiff(got, h); diff > 1e-5 {
			rt.Fatalf("guidance changed a resolution-consistent prediction by %v", diff)
		}
	})
}

// TestPropertyPooledPrediction checks the defining identity of the guided
// prediction: D(eps~) = (1-w) D(eps) + w eps_low/sqrt(k).
func TestPropertyPooledPrediction(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		shape, factors := drawCase(rt)
		plan, _ := resample.NewPooling(shape, factors)
		r := rand.New(rand.NewPCG(rapid.Uint64().Draw(rt, "seed"), 2))
		x := randTensor(r, shape...)
		ts := drawTimesteps(rt, shape[0])
		opts := DefaultUpsampleOptions()
		opts.Factors = factors
		opts.Theta = rapid.Float64Range(-1, 2).Draw(rt, "theta")
		model := pointwise{0.6, 0.4}
		m := &spy{model: model, high: shape}
		d, _ := Upsample(m, testSchedule, opts)
		got, err := predict(d, x, ts...)
		if err != nil {
			rt.Fatal(err)
		}
		plain, _ := predict(model, x, ts...)
		if plan.K() == 1 || opts.Theta == 0 {
			if maxAbsDiff(got, plain) != 0 {
				rt.Fatal("k = 1 or theta = 0 changed the prediction")
			}
			return
		}
		dGot := make([]float32, plan.LowLen())
		dPlain := make([]float32, plan.LowLen())
		plan.Pool(dGot, got, 1)
		plan.Pool(dPlain, plain, 1)
		lowEps := tensorOf(plan.LowShape(nil, len(shape), shape[0], shape[1])...)
		lowX := tensor.New(tensor.WithShape(lowEps.Shape()...), tensor.WithBacking(m.lastLow))
		if err := model.PredictNoise(context.Background(), lowEps, lowX, m.lastTau); err != nil {
			rt.Fatal(err)
		}
		k := float64(plan.K())
		w := opts.Theta
		for i, e := range lowEps.Float32s() {
			want := (1-w)*float64(dPlain[i]) + w*float64(e)/math.Sqrt(k)
			if math.Abs(float64(dGot[i])-want) > 2e-5*(1+math.Abs(want)) {
				rt.Fatalf("D(eps~)[%d] = %v, want %v", i, dGot[i], want)
			}
		}
	})
}

// TestPropertyLowInputIsMatchedSample checks the power and time adjustment:
// D(x_t)/sqrt(P_t) = sqrt(abar_tau) D(x_0) + sqrt(1-abar_tau) eps' with
// eps' = sqrt(k) D(eps).
func TestPropertyLowInputIsMatchedSample(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		shape, factors := drawCase(rt)
		plan, _ := resample.NewPooling(shape, factors)
		r := rand.New(rand.NewPCG(rapid.Uint64().Draw(rt, "seed"), 3))
		x0 := randTensor(r, shape...).Float32s()
		eps := randTensor(r, shape...).Float32s()
		tt := float32(rapid.Float64Range(1, 999).Draw(rt, "t"))
		ab := testSchedule.AlphaBar(float64(tt))
		xt := tensorOf(shape...)
		for i, d := 0, xt.Float32s(); i < len(d); i++ {
			d[i] = float32(math.Sqrt(ab)*float64(x0[i]) + math.Sqrt(1-ab)*float64(eps[i]))
		}
		m := &spy{model: pointwise{1, 0}, high: shape}
		opts := DefaultUpsampleOptions()
		opts.Factors = factors
		d, _ := Upsample(m, testSchedule, opts)
		if _, err := predict(d, xt, tt); err != nil {
			rt.Fatal(err)
		}
		if plan.K() == 1 {
			return // no low-resolution call
		}
		abTau := testSchedule.AlphaBar(float64(m.lastTau[0]))
		k := float64(plan.K())
		if k*testSchedule.SNR(float64(tt)) > testSchedule.SNR(0) {
			// The matched SNR is beyond the schedule: tau is clamped to 0.
			if m.lastTau[0] != 0 {
				rt.Fatalf("tau = %v, want the clamp 0", m.lastTau[0])
			}
			return
		}
		if want := k * ab / (1 + (k-1)*ab); math.Abs(abTau-want) > 1e-4*want {
			rt.Fatalf("abar(tau) = %v, want k abar/(1+(k-1)abar) = %v", abTau, want)
		}
		dx0 := make([]float32, plan.LowLen())
		deps := make([]float32, plan.LowLen())
		plan.Pool(dx0, x0, 1)
		plan.Pool(deps, eps, float32(math.Sqrt(k)))
		for i := range dx0 {
			want := math.Sqrt(abTau)*float64(dx0[i]) + math.Sqrt(1-abTau)*float64(deps[i])
			if math.Abs(float64(m.lastLow[i])-want) > 1e-4*(1+math.Abs(want)) {
				rt.Fatalf("low input[%d] = %v, want %v (t %v tau %v)", i, m.lastLow[i], want, tt, m.lastTau[0])
			}
		}
	})
}

func TestPropertyZeroWeightIsBitExact(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		shape, factors := drawCase(rt)
		r := rand.New(rand.NewPCG(rapid.Uint64().Draw(rt, "seed"), 4))
		x := randTensor(r, shape...)
		opts := DefaultUpsampleOptions()
		opts.Factors = factors
		ts := drawTimesteps(rt, shape[0])
		if rapid.Bool().Draw(rt, "theta0") {
			opts.Theta = 0
		} else {
			// A window that starts after every timestep.
			var tmax float32
			for _, v := range ts {
				tmax = max(tmax, v)
			}
			opts.Eta = rapid.Float64Range(0, 1-float64(tmax)/1000-1e-3).Draw(rt, "eta")
		}
		model := pointwise{0.9, -0.2}
		d, _ := Upsample(model, testSchedule, opts)
		got, err := predict(d, x, ts...)
		if err != nil {
			rt.Fatal(err)
		}
		plain, _ := predict(model, x, ts...)
		if maxAbsDiff(got, plain) != 0 {
			rt.Fatal("w_t = 0 changed the prediction")
		}
	})
}

func TestUpsampleConcurrentUse(t *testing.T) {
	// Concurrent callers with different shapes get the serial results.
	model := pointwise{0.8, 0.5}
	d, _ := Upsample(model, testSchedule, DefaultUpsampleOptions())
	shapes := [][]int{{1, 2, 8, 8}, {2, 1, 4, 12}, {1, 1, 2, 6, 6}}
	r := rand.New(rand.NewPCG(5, 5))
	var xs []*tensor.Dense
	var want [][]float32
	for _, s := range shapes {
		x := randTensor(r, s...)
		w, err := predict(d, x, 700)
		if err != nil {
			t.Fatal(err)
		}
		xs, want = append(xs, x), append(want, w)
	}
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			for i := range 20 {
				j := (g + i) % len(shapes)
				got, err := predict(d, xs[j], 700)
				if err != nil || maxAbsDiff(got, want[j]) != 0 {
					t.Errorf("concurrent call on %v: err %v, diff %v", shapes[j], err, maxAbsDiff(got, want[j]))
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestUpsampleDoesNotAllocate checks steady-state guided calls, concurrent
// and sequential.
func TestUpsampleDoesNotAllocate(t *testing.T) {
	for _, seq := range []bool{false, true} {
		opts := DefaultUpsampleOptions()
		opts.Sequential = seq
		d, _ := Upsample(pointwise{1, 0.5}, testSchedule, opts)
		x := randTensor(rand.New(rand.NewPCG(6, 6)), 2, 4, 16, 16)
		dst := tensorOf(2, 4, 16, 16)
		ts := []float32{800}
		ctx := context.Background()
		_ = d.PredictNoise(ctx, dst, x, ts)
		allocs := testing.AllocsPerRun(50, func() {
			if err := d.PredictNoise(ctx, dst, x, ts); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("Sequential %v: %v allocations per guided call, want 0", seq, allocs)
		}
	}
}

func TestUpsampleOptionsValidate(t *testing.T) {
	for _, o := range []UpsampleOptions{{}, DefaultUpsampleOptions(), LatentUpsampleOptions(), {Factors: []int{2}, Theta: -3, Eta: 0}} {
		if err := o.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", o, err)
		}
		if _, err := Upsample(pointwise{1, 1}, testSchedule, o); err != nil {
			t.Errorf("Upsample(%+v) = %v, want nil", o, err)
		}
	}
	// Theta 0 turns guidance off but does not make other settings valid;
	// Upsample refuses exactly what Validate refuses.
	for _, o := range []UpsampleOptions{
		{Eta: 2}, {Eta: math.NaN()}, {Factors: []int{0}}, {Factors: []int{}},
		{TimeMatching: 5}, {Prediction: "noise"}, {Theta: math.Inf(1), Eta: 1},
	} {
		err := o.Validate()
		if err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", o)
			continue
		}
		if _, uerr := Upsample(pointwise{1, 1}, testSchedule, o); uerr == nil || uerr.Error() != err.Error() {
			t.Errorf("Upsample(%+v) error %v, Validate %v", o, uerr, err)
		}
	}
	if l := LatentUpsampleOptions(); l.Theta != 1.2 || l.Eta != 0.6 || l.Factors != nil || l.TimeMatching != schedule.Continuous {
		t.Errorf("LatentUpsampleOptions() = %+v", l)
	}
}

// TestPropertyActiveIsTheWindow: Active is w_t != 0, t >= (1-Eta)*T, and
// Upsample guides exactly where it reports true.
func TestPropertyActiveIsTheWindow(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	x := randTensor(r, 1, 1, 4, 4)
	rapid.Check(t, func(rt *rapid.T) {
		o := DefaultUpsampleOptions()
		o.Eta = float64(rapid.IntRange(0, 10).Draw(rt, "eta10")) / 10
		o.Theta = rapid.SampledFrom([]float64{0, 0.5, 1, 1.2}).Draw(rt, "theta")
		tt := float32(rapid.IntRange(0, testSchedule.Len()-1).Draw(rt, "t"))
		T := testSchedule.Len()
		want := o.Theta != 0 && float64(tt) >= (1-o.Eta)*float64(T)
		if got := o.Active(float64(tt), T); got != want {
			rt.Fatalf("Active(%v, %d) = %v with Eta %v, Theta %v", tt, T, got, o.Eta, o.Theta)
		}
		d, err := Upsample(pointwise{0.7, 0.3}, testSchedule, o)
		if err != nil {
			rt.Fatal(err)
		}
		got, err := predict(d, x, tt)
		if err != nil {
			rt.Fatal(err)
		}
		pl, _ := predict(pointwise{0.7, 0.3}, x, tt)
		if guided := maxAbsDiff(got, pl) != 0; guided != want {
			rt.Fatalf("t %v, Eta %v, Theta %v: guided %v, Active %v", tt, o.Eta, o.Theta, guided, want)
		}
	})
}
