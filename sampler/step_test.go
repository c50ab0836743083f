package sampler

import (
	"math"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/schedule"
)

// outputsFor returns what an exact model predicts for x_t = sqrt(a) x0 +
// sqrt(1-a) eps under each prediction type.
func outputsFor(pred schedule.PredictionType, x0, eps []float32, a float64) []float32 {
	out := make([]float32, len(x0))
	sa, sb := math.Sqrt(a), math.Sqrt(1-a)
	for i := range out {
		switch pred {
		case schedule.PredictV:
			out[i] = float32(sa*float64(eps[i]) - sb*float64(x0[i]))
		case schedule.PredictSample:
			out[i] = x0[i]
		default:
			out[i] = eps[i]
		}
	}
	return out
}

// TestPredictionTypesAgree gives each scheduler the same exact model in
// its three parametrisations: the updates must agree.
func TestPredictionTypesAgree(t *testing.T) {
	s := schedule.Linear(1000, 0.0001, 0.02)
	const n = 64
	x0, eps, z := make([]float32, n), make([]float32, n), make([]float32, n)
	src := noise.NewPCG(11)
	src.Normal(x0)
	src.Normal(eps)
	src.Normal(z)
	for _, tc := range []struct {
		name    string
		make    func(schedule.PredictionType) discreteScheduler
		t, prev int
	}{
		{"ddim", func(p schedule.PredictionType) discreteScheduler { return &DDIM{Schedule: s, PredictionType: p} }, 500, 450},
		{"ddim_eta_final", func(p schedule.PredictionType) discreteScheduler {
			return &DDIM{Schedule: s, PredictionType: p, Eta: 0.5, SetAlphaToOne: true}
		}, 20, -1},
		{"ddim_clipped_output", func(p schedule.PredictionType) discreteScheduler {
			return &DDIM{Schedule: s, PredictionType: p, Clip: Clip{ClipSample: true, ClipSampleRange: 0.5}, UseClippedModelOutput: true}
		}, 900, 800},
		{"ddpm", func(p schedule.PredictionType) discreteScheduler { return &DDPM{Schedule: s, PredictionType: p} }, 300, 299},
		{"ddpm_large", func(p schedule.PredictionType) discreteScheduler {
			return &DDPM{Schedule: s, PredictionType: p, VarianceType: schedule.FixedLarge, Clip: Clip{ClipSample: true}}
		}, 999, 949},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := float64(s.AlphaBar(float64(tc.t)))
			xt := make([]float32, n)
			for i := range xt {
				xt[i] = float32(math.Sqrt(a)*float64(x0[i]) + math.Sqrt(1-a)*float64(eps[i]))
			}
			var ref []float32
			for _, p := range []schedule.PredictionType{schedule.PredictEpsilon, schedule.PredictV, schedule.PredictSample} {
				sch := tc.make(p)
				dst, gotX0 := make([]float32, n), make([]float32, n)
				in := StepInput{Timestep: tc.t, Prev: tc.prev, ModelOutput: outputsFor(p, x0, eps, a), Sample: xt, X0: gotX0}
				if sch.NeedsNoise(tc.t) {
					in.Noise = z
				}
				if err := sch.Step(dst, in); err != nil {
					t.Fatal(err)
				}
				if ref == nil {
					ref = dst
					continue
				}
				for i := range dst {
					if math.Abs(float64(dst[i]-ref[i])) > 2e-3 {
						t.Fatalf("%s: x_prev[%d] = %v, epsilon gives %v", p, i, dst[i], ref[i])
					}
				}
			}
		})
	}
}

// TestDDIMEtaOneIsDDPM: with eta = 1 and n = T, DDIM's step has DDPM's
// posterior mean and fixed_small variance.
func TestDDIMEtaOneIsDDPM(t *testing.T) {
	s := schedule.ScaledLinear(1000, 0.00085, 0.012)
	ddim := &DDIM{Schedule: s, Eta: 1, SetAlphaToOne: true}
	ddpm := &DDPM{Schedule: s}
	const n = 256
	x, eps, z := make([]float32, n), make([]float32, n), make([]float32, n)
	src := noise.NewPCG(5)
	src.Normal(x)
	src.Normal(eps)
	src.Normal(z)
	for _, tt := range []int{999, 700, 250, 10, 1} {
		a, b := make([]float32, n), make([]float32, n)
		in := StepInput{Timestep: tt, Prev: tt - 1, ModelOutput: eps, Sample: x, Noise: z}
		if err := ddim.Step(a, in); err != nil {
			t.Fatal(err)
		}
		if err := ddpm.Step(b, in); err != nil {
			t.Fatal(err)
		}
		for i := range a {
			if math.Abs(float64(a[i]-b[i])) > 1e-4*(1+math.Abs(float64(b[i]))) {
				t.Fatalf("t=%d: DDIM(eta=1) %v, DDPM %v at %d", tt, a[i], b[i], i)
			}
		}
	}
}

// TestDDPMVarianceTypes measures the noise each variance type adds: the
// difference of two steps that differ only in their noise.
func TestDDPMVarianceTypes(t *testing.T) {
	s := schedule.Linear(1000, 0.0001, 0.02)
	betas, ac := s.Betas(), s.AlphasCumprod()
	const tt = 600
	post := float64(1-ac[tt-1]) / float64(1-ac[tt]) * float64(betas[tt])
	for _, tc := range []struct {
		vt      schedule.VarianceType
		wantVar float64
	}{
		{"", post},
		{schedule.FixedSmall, post},
		{schedule.FixedSmallLog, post},
		{schedule.FixedLarge, float64(betas[tt])},
		{schedule.FixedLargeLog, float64(betas[tt])},
	} {
		d := &DDPM{Schedule: s, VarianceType: tc.vt}
		x, eps := make([]float32, 8), make([]float32, 8)
		ones, zeros := make([]float32, 8), make([]float32, 8)
		for i := range x {
			x[i], eps[i], ones[i] = float32(i)/8, -float32(i)/16, 1
		}
		a, b := make([]float32, 8), make([]float32, 8)
		if err := d.Step(a, StepInput{Timestep: tt, Prev: tt - 1, ModelOutput: eps, Sample: x, Noise: ones}); err != nil {
			t.Fatal(err)
		}
		if err := d.Step(b, StepInput{Timestep: tt, Prev: tt - 1, ModelOutput: eps, Sample: x, Noise: zeros}); err != nil {
			t.Fatal(err)
		}
		std := float64(a[0] - b[0])
		if math.Abs(std*std-tc.wantVar) > 1e-3*tc.wantVar {
			t.Errorf("%q: noise std %v (variance %v), want variance %v", tc.vt, std, std*std, tc.wantVar)
		}
		if v, err := d.Variance(tt, tt-1); err != nil || math.Abs(float64(v)-tc.wantVar) > 1e-3*tc.wantVar {
			t.Errorf("%q: Variance = %v, %v; want %v", tc.vt, v, err, tc.wantVar)
		}
	}
	// t = 0 draws no noise.
	d := &DDPM{Schedule: s}
	if d.NeedsNoise(0) || !d.NeedsNoise(1) {
		t.Error("DDPM must draw noise at every t > 0 and not at t = 0")
	}
}

// quantileRef is torch.quantile(v, q) by full sort, in float64.
func quantileRef(v []float32, q float32) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	rank := float64(q) * float64(len(s)-1)
	lo := int(math.Floor(rank))
	if lo+1 >= len(s) {
		return float64(s[lo])
	}
	w := rank - float64(lo)
	return float64(s[lo]) + w*float64(s[lo+1]-s[lo])
}

func TestQuantile(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		v := rapid.SliceOfN(rapid.Float32Range(-1e3, 1e3), 1, 300).Draw(t, "v")
		q := rapid.Float32Range(0, 1).Draw(t, "q")
		want := quantileRef(v, q)
		got := quantile32(slices.Clone(v), q)
		if math.Abs(float64(got)-want) > 1e-4*(1+math.Abs(want)) {
			t.Fatalf("quantile(%v, %v) = %v, want %v", v, q, got, want)
		}
	})
}

// TestThresholding checks dynamic thresholding per batch element against
// its definition, through a step whose x0 is the model output.
func TestThresholding(t *testing.T) {
	s := schedule.Linear(1000, 0.0001, 0.02)
	const batch, per = 3, 200
	x0 := make([]float32, batch*per)
	noise.NewPCG(9).Normal(x0)
	for i := range per { // element 0 small, 1 medium, 2 large
		x0[i] *= 0.2
		x0[2*per+i] *= 4
	}
	xt := make([]float32, len(x0))
	for _, tc := range []struct {
		ratio, max float32
	}{{0.995, 1}, {0.9, 2}, {0.5, 3}, {0, 0}} {
		d := &DDIM{Schedule: s, PredictionType: schedule.PredictSample, Clip: Clip{ClipSample: true, ClipSampleRange: 0.01, Threshold: Threshold{Thresholding: true, DynamicThresholdingRatio: tc.ratio, SampleMaxValue: tc.max}}} // clipping is ignored under thresholding
		ratio, maxv := tc.ratio, tc.max
		if ratio == 0 {
			ratio, maxv = 0.995, 1
		}
		got := make([]float32, len(x0))
		for _, scratch := range [][]float32{nil, make([]float32, per)} {
			in := StepInput{Timestep: 10, Prev: 0, ModelOutput: x0, Sample: xt, X0: got, Batch: batch, Scratch: scratch}
			if err := d.Step(make([]float32, len(x0)), in); err != nil {
				t.Fatal(err)
			}
			for b := range batch {
				seg := x0[b*per : (b+1)*per]
				abs := make([]float32, per)
				for i, v := range seg {
					abs[i] = float32(math.Abs(float64(v)))
				}
				sv := min(max(quantileRef(abs, ratio), 1), float64(maxv))
				for i, v := range seg {
					want := min(max(float64(v), -sv), sv) / sv
					if math.Abs(float64(got[b*per+i])-want) > 1e-5 {
						t.Fatalf("ratio %v max %v: element %d value %d: %v, want %v (s = %v)", ratio, maxv, b, i, got[b*per+i], want, sv)
					}
				}
			}
		}
	}
}

func TestNewFromConfig(t *testing.T) {
	cfg := schedule.DefaultConfig()
	cfg.BetaSchedule = "scaled_linear"
	cfg.BetaStart, cfg.BetaEnd = 0.00085, 0.012
	cfg.SetAlphaToOne = false
	cfg.StepsOffset = 1
	cfg.ClipSample = false
	cfg.PredictionType = "v_prediction"
	d, err := NewDDIM(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if d.SetAlphaToOne || d.StepsOffset != 1 || d.ClipSample || d.PredictionType != schedule.PredictV || d.Schedule.Len() != 1000 {
		t.Errorf("NewDDIM did not carry the configuration over: %+v", d)
	}
	if ts, err := d.Timesteps(50); err != nil || ts[0] != 981 || ts[49] != 1 {
		t.Errorf("SD-style timesteps = %v, %v; want 981 ... 1", ts, err)
	}
	cfg.VarianceType = "fixed_large"
	p, err := NewDDPM(cfg)
	if err != nil || p.VarianceType != schedule.FixedLarge {
		t.Errorf("NewDDPM = %+v, %v", p, err)
	}

	bad := []struct {
		name   string
		mutate func(*schedule.Config)
		ddpm   bool
		want   string
	}{
		{"learned variance", func(c *schedule.Config) { c.VarianceType = "learned_range" }, true, "not supported"},
		{"bad schedule", func(c *schedule.Config) { c.NumTrainTimesteps = 0 }, false, ""},
		{"bad schedule ddpm", func(c *schedule.Config) { c.BetaSchedule = "cubic" }, true, ""},
	}
	for _, tc := range bad {
		c := schedule.DefaultConfig()
		tc.mutate(&c)
		var err error
		if tc.ddpm {
			_, err = NewDDPM(c)
		} else {
			_, err = NewDDIM(c)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
}

func TestSchedulerErrors(t *testing.T) {
	s := schedule.Linear(1000, 0.0001, 0.02)
	n := 16
	v := make([]float32, n)
	ok := StepInput{Timestep: 500, Prev: 400, ModelOutput: v, Sample: v, Noise: v}
	tests := []struct {
		name string
		s    discreteScheduler
		dst  []float32
		in   StepInput
		want string
	}{
		{"nil schedule", &DDIM{}, v, ok, "Schedule"},
		{"negative eta", &DDIM{Schedule: s, Eta: -1}, v, ok, "eta"},
		{"NaN eta", &DDIM{Schedule: s, Eta: math.NaN()}, v, ok, "eta"},
		{"negative offset", &DDIM{Schedule: s, StepsOffset: -1}, v, ok, "offset"},
		{"negative offset ddpm", &DDPM{Schedule: s, StepsOffset: -1}, v, ok, "offset"},
		{"prediction type", &DDPM{Schedule: s, PredictionType: "x0"}, v, ok, "prediction type"},
		{"variance type", &DDPM{Schedule: s, VarianceType: "learned"}, v, ok, "variance type"},
		{"clip range", &DDIM{Schedule: s, Clip: Clip{ClipSample: true, ClipSampleRange: -1}}, v, ok, "clip"},
		{"ratio", &DDIM{Schedule: s, Clip: Clip{Threshold: Threshold{Thresholding: true, DynamicThresholdingRatio: 1.5}}}, v, ok, "ratio"},
		{"max value", &DDPM{Schedule: s, Clip: Clip{Threshold: Threshold{Thresholding: true, SampleMaxValue: -0.5}}}, v, ok, "max value"},
		{"short dst", &DDIM{Schedule: s}, v[:3], ok, "dst"},
		{"short output", &DDIM{Schedule: s}, v, StepInput{Timestep: 500, Prev: 400, ModelOutput: v[:3], Sample: v}, "model output"},
		{"empty", &DDPM{Schedule: s}, nil, StepInput{Timestep: 500, Prev: 400}, "empty"},
		{"no noise", &DDPM{Schedule: s}, v, StepInput{Timestep: 500, Prev: 400, ModelOutput: v, Sample: v}, "noise"},
		{"no noise eta", &DDIM{Schedule: s, Eta: 0.5}, v, StepInput{Timestep: 500, Prev: 400, ModelOutput: v, Sample: v}, "noise"},
		{"timestep", &DDIM{Schedule: s}, v, StepInput{Timestep: 1000, Prev: 900, ModelOutput: v, Sample: v}, "outside"},
		{"prev", &DDIM{Schedule: s}, v, StepInput{Timestep: 100, Prev: 100, ModelOutput: v, Sample: v}, "previous"},
		{"batch", &DDIM{Schedule: s}, v, StepInput{Timestep: 100, Prev: 0, ModelOutput: v, Sample: v, Batch: 3}, "batch"},
		{"x0 length", &DDIM{Schedule: s}, v, StepInput{Timestep: 100, Prev: 0, ModelOutput: v, Sample: v, X0: v[:2]}, "X0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s.Step(tc.dst, tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Step: err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	for _, sch := range []discreteScheduler{&DDIM{Schedule: s}, &DDPM{Schedule: s}} {
		if err := sch.AddNoise(v, v, v, 1000); err == nil {
			t.Errorf("%T.AddNoise accepted timestep 1000", sch)
		}
		if err := sch.AddNoise(v, v[:2], v, 10); err == nil {
			t.Errorf("%T.AddNoise accepted mismatched lengths", sch)
		}
		if _, err := sch.Timesteps(0); err == nil {
			t.Errorf("%T.Timesteps(0) did not fail", sch)
		}
	}
	if _, err := (&DDIM{Schedule: s, StepsOffset: 1}).Timesteps(1000); err == nil {
		t.Error("offset 1 with 1000 steps reaches timestep 1000 and must fail")
	}
	if _, err := (&DDIM{Schedule: s}).Variance(1000, 0); err == nil {
		t.Error("DDIM Variance accepted timestep 1000")
	}
	if _, err := (&DDPM{Schedule: s}).Variance(5, 5); err == nil {
		t.Error("DDPM Variance accepted prev == t")
	}
}

// TestAddNoise checks the forward process against its formula.
func TestAddNoise(t *testing.T) {
	s := schedule.Linear(1000, 0.0001, 0.02)
	x0, z := make([]float32, 32), make([]float32, 32)
	noise.NewPCG(4).Normal(x0)
	noise.NewPCG(5).Normal(z)
	for _, tt := range []int{0, 400, 999} {
		a := s.AlphaBar(float64(tt))
		got := make([]float32, 32)
		if err := (&DDPM{Schedule: s}).AddNoise(got, x0, z, tt); err != nil {
			t.Fatal(err)
		}
		for i := range got {
			want := math.Sqrt(a)*float64(x0[i]) + math.Sqrt(1-a)*float64(z[i])
			if math.Abs(float64(got[i])-want) > 1e-6 {
				t.Fatalf("t=%d: [%d] = %v, want %v", tt, i, got[i], want)
			}
		}
	}
}
