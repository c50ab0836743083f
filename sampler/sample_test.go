package sampler

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/schedule"
)

func equalBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: [%d] = %v, want %v (bit-identical)", what, i, got[i], want[i])
		}
	}
}

// schedulers returns deterministic and stochastic solvers of every kind.
func schedulers(t testing.TB) map[string]Solver {
	s := schedule.ScaledLinear(1000, 0.00085, 0.012)
	return map[string]Solver{
		"ddim":           &DDIM{Schedule: s, StepsOffset: 1},
		"ddim_eta":       &DDIM{Schedule: s, Eta: 0.7, Clip: Clip{Threshold: Threshold{Thresholding: true, SampleMaxValue: 1.5}}},
		"ddpm_small":     &DDPM{Schedule: s, Clip: Clip{ClipSample: true}},
		"dpm2m":          &DPMSolverMultistep{Schedule: s, LowerOrderFinal: true},
		"dpm2m_karras":   &DPMSolverMultistep{Schedule: s, UseKarrasSigmas: true, SolverType: Heun, Spacing: schedule.Leading, StepsOffset: 1},
		"dpm2m_sde":      &DPMSolverMultistep{Schedule: s, Algorithm: SDEDPMSolverPP, Threshold: Threshold{Thresholding: true, SampleMaxValue: 1.2}},
		"euler":          &Euler{Schedule: s},
		"euler_karras":   &Euler{Schedule: s, UseKarrasSigmas: true, Spacing: schedule.Leading, StepsOffset: 1},
		"euler_churn":    &Euler{Schedule: s, SChurn: 4, STMin: 0.5, STMax: 8},
		"euler_a":        &EulerAncestral{Schedule: s, Spacing: schedule.Trailing},
		"euler_a_karras": &EulerAncestral{Schedule: s, UseKarrasSigmas: true},
	}
}

// manualSample drives the Trajectory/StepAt contract by hand, as documented on
// Trajectory, with fresh buffers at every step.
func manualSample(t *testing.T, model ugo.Denoiser, s Solver, x []float32, steps int, src noise.Source) {
	t.Helper()
	p, err := s.Trajectory(steps)
	if err != nil {
		t.Fatal(err)
	}
	for j := range x {
		x[j] *= p.initSigma()
	}
	var prevX0 []float32
	for i := range steps {
		in := append([]float32(nil), x...)
		if p.InputNorm != nil {
			for j := range in {
				in[j] /= p.InputNorm[i]
			}
		}
		eps := tensor.New(tensor.WithShape(dB, dC, dH, dW), tensor.WithBacking(make([]float32, dN)))
		xt := tensor.New(tensor.WithShape(dB, dC, dH, dW), tensor.WithBacking(in))
		if err := model.PredictNoise(context.Background(), eps, xt, []float32{p.Timesteps[i]}); err != nil {
			t.Fatal(err)
		}
		x0 := make([]float32, dN)
		stepIn := StepInput{ModelOutput: eps.Float32s(), Sample: x, X0: x0, Batch: dB}
		if p.Multistep {
			stepIn.PrevX0 = prevX0
		}
		if p.Noisy[i] {
			stepIn.Noise = make([]float32, dN)
			src.Normal(stepIn.Noise)
		}
		if err := s.StepAt(x, p, i, stepIn); err != nil {
			t.Fatal(err)
		}
		prevX0 = x0
	}
}

// TestSampleMatchesManualLoop drives each solver by hand, as diffusers'
// tests do, and checks that Sample does exactly the same.
func TestSampleMatchesManualLoop(t *testing.T) {
	for name, s := range schedulers(t) {
		t.Run(name, func(t *testing.T) {
			const steps = 12
			model := analyticModel(s.(interface{ sched() *schedule.Schedule }).sched(), 0.3)
			x := dummyDeter(false)
			want := append([]float32(nil), x.Float32s()...)
			manualSample(t, model, s, want, steps, noise.NewPCG(7))
			if err := Sample(context.Background(), model, s, x, Options{Steps: steps, Noise: noise.NewPCG(7)}); err != nil {
				t.Fatal(err)
			}
			equalBits(t, "Sample vs manual loop", x.Float32s(), want)
		})
	}
}

// TestSchedulerManualLoop checks the integer-timestep methods of DDIM and DDPM
// (Timesteps, PrevTimestep, NeedsNoise, Step) against Sample.
func TestSchedulerManualLoop(t *testing.T) {
	for name, s := range schedulers(t) {
		sc, ok := s.(discreteScheduler)
		if !ok {
			continue
		}
		t.Run(name, func(t *testing.T) {
			const steps = 12
			model := analyticModel(s.(interface{ sched() *schedule.Schedule }).sched(), 0.3)
			x := dummyDeter(false)
			want := append([]float32(nil), x.Float32s()...)
			src := noise.NewPCG(7)
			ts, err := sc.Timesteps(steps)
			if err != nil {
				t.Fatal(err)
			}
			eps := tensor.New(tensor.WithShape(dB, dC, dH, dW), tensor.WithBacking(make([]float32, dN)))
			z := make([]float32, dN)
			for _, ti := range ts {
				xt := tensor.New(tensor.WithShape(dB, dC, dH, dW), tensor.WithBacking(want))
				if err := model.PredictNoise(context.Background(), eps, xt, []float32{float32(ti)}); err != nil {
					t.Fatal(err)
				}
				in := StepInput{Timestep: ti, Prev: sc.PrevTimestep(ti, steps), ModelOutput: eps.Float32s(), Sample: want, Batch: dB}
				if sc.NeedsNoise(ti) {
					src.Normal(z)
					in.Noise = z
				}
				if err := sc.Step(want, in); err != nil {
					t.Fatal(err)
				}
			}
			{
				solver := s
				x := dummyDeter(false)
				if err := Sample(context.Background(), model, solver, x, Options{Steps: steps, Noise: noise.NewPCG(7)}); err != nil {
					t.Fatal(err)
				}
				equalBits(t, "Sample vs manual Scheduler loop", x.Float32s(), want)
			}
		})
	}
}

func (d *DDIM) sched() *schedule.Schedule               { return d.Schedule }
func (d *DDPM) sched() *schedule.Schedule               { return d.Schedule }
func (d *DPMSolverMultistep) sched() *schedule.Schedule { return d.Schedule }
func (e *Euler) sched() *schedule.Schedule              { return e.Schedule }
func (e *EulerAncestral) sched() *schedule.Schedule     { return e.Schedule }

// TestResume interrupts runs from the progress callback, saves the state,
// and resumes: the result must equal the uninterrupted run bit for bit
// when the noise stream continues (and, for multistep solvers, the
// previous X0 is restored).
func TestResume(t *testing.T) {
	for name, s := range schedulers(t) {
		for _, stop := range []int{0, 4, 9} {
			t.Run(name, func(t *testing.T) {
				const steps = 10
				model := analyticModel(s.(interface{ sched() *schedule.Schedule }).sched(), -0.2)
				full := dummyDeter(false)
				if err := Sample(context.Background(), model, s, full, Options{Steps: steps, Noise: noise.NewPCG(3)}); err != nil {
					t.Fatal(err)
				}

				x := dummyDeter(false)
				src := noise.NewPCG(3)
				var saved, savedX0 *tensor.Dense
				errStop := errors.New("stop")
				err := Sample(context.Background(), model, s, x, Options{Steps: steps, Noise: src,
					Progress: func(p ProgressInfo) error {
						if p.Step == stop {
							saved, savedX0 = clone(p.Sample), clone(p.X0)
							return errStop
						}
						return nil
					}})
				var se *StepError
				if !errors.As(err, &se) || !errors.Is(err, errStop) || se.Step != stop || se.Resume != stop+1 {
					t.Fatalf("interrupted run: err = %v, want a *StepError at step %d wrapping errStop", err, stop)
				}
				equalBits(t, "x after interruption", x.Float32s(), saved.Float32s())
				if err := Sample(context.Background(), model, s, saved, Options{Steps: steps, Noise: src, StartStep: se.Resume, PrevX0: savedX0}); err != nil {
					t.Fatal(err)
				}
				equalBits(t, "resumed run", saved.Float32s(), full.Float32s())
			})
		}
	}
}

// TestStrengthOneStepFromX0 checks the img2img start: with a model that
// knows the data, any strength brings a clean input back to itself.
func TestStrength(t *testing.T) {
	s := schedule.Linear(1000, 0.0001, 0.02)
	d := &DDIM{Schedule: s, SetAlphaToOne: true}
	for _, strength := range []float64{0.1, 0.35, 1} {
		x := tensor.New(tensor.WithShape(1, 1, 4, 4), tensor.WithBacking(make([]float32, 16)))
		for i := range x.Float32s() {
			x.Float32s()[i] = 0.25
		}
		var steps []int
		err := Sample(context.Background(), analyticModel(s, 0.25), d, x, Options{Steps: 20, Noise: noise.NewPCG(1), Strength: strength,
			Progress: func(p ProgressInfo) error { steps = append(steps, p.Step); return nil }})
		if err != nil {
			t.Fatal(err)
		}
		kept := int(20 * strength)
		if len(steps) != kept || steps[0] != 20-kept {
			t.Errorf("strength %v ran steps %v, want the last %d", strength, steps, kept)
		}
		for i, v := range x.Float32s() {
			if math.Abs(float64(v)-0.25) > 1e-4 {
				t.Fatalf("strength %v: x[%d] = %v, want 0.25", strength, i, v)
			}
		}
	}
}

// TestCancel cancels runs in two ways: between steps, and inside a model
// call that blocks until the context ends.
func TestCancel(t *testing.T) {
	s := schedule.Linear(1000, 0.0001, 0.02)
	d := &DDIM{Schedule: s}
	for name, sol := range map[string]Solver{
		"ddim":  d,
		"dpm2m": &DPMSolverMultistep{Schedule: s},
		"euler": &Euler{Schedule: s, UseKarrasSigmas: true},
	} {
		t.Run("between_steps/"+name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var before *tensor.Dense
			calls := 0
			model := ugo.DenoiserFunc(func(ctx context.Context, dst, x *tensor.Dense, tt []float32) error {
				calls++
				return dummyModel(ctx, dst, x, tt)
			})
			x := dummyDeter(false)
			err := Sample(ctx, model, sol, x, Options{Steps: 10, Progress: func(p ProgressInfo) error {
				if p.Step == 3 {
					before = clone(p.Sample)
					cancel()
				}
				return nil
			}})
			var se *StepError
			if !errors.Is(err, context.Canceled) || !errors.As(err, &se) || se.Step != 4 || se.Resume != 4 {
				t.Fatalf("err = %v, want context.Canceled at step 4", err)
			}
			if calls != 4 {
				t.Errorf("model called %d times, want 4", calls)
			}
			equalBits(t, "x after cancel", x.Float32s(), before.Float32s())
		})
	}
	t.Run("inside_model", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		model := ugo.DenoiserFunc(func(ctx context.Context, _, _ *tensor.Dense, _ []float32) error {
			<-ctx.Done()
			return ctx.Err()
		})
		start := time.Now()
		err := Sample(ctx, model, d, dummyDeter(false), Options{Steps: 10})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want DeadlineExceeded", err)
		}
		if el := time.Since(start); el > 5*time.Second {
			t.Errorf("returned after %v", el)
		}
	})
}

// TestNonFinite feeds NaN and infinite model outputs at one step.
func TestNonFinite(t *testing.T) {
	s := schedule.Linear(1000, 0.0001, 0.02)
	d := &DDIM{Schedule: s}
	ts, _ := d.Timesteps(10)
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		for _, at := range []int{0, 6, 9} {
			var before []float32
			model := ugo.DenoiserFunc(func(ctx context.Context, dst, x *tensor.Dense, tt []float32) error {
				if err := dummyModel(ctx, dst, x, tt); err != nil {
					return err
				}
				if int(tt[0]) == ts[at] {
					before = append([]float32(nil), x.Float32s()...)
					dst.Float32s()[17] = bad
				}
				return nil
			})
			x := dummyDeter(false)
			err := Sample(context.Background(), model, d, x, Options{Steps: 10})
			var se *StepError
			if !errors.Is(err, ErrNonFinite) || !errors.As(err, &se) || se.Step != at || se.Timestep != ts[at] || se.Resume != at {
				t.Fatalf("output %v at step %d: err = %v", bad, at, err)
			}
			if msg := err.Error(); !strings.Contains(msg, "timestep") || !strings.Contains(msg, "index 17") {
				t.Errorf("error %q does not name the timestep and index", msg)
			}
			equalBits(t, "x after failed step", x.Float32s(), before)
		}
	}
}

func TestSampleErrors(t *testing.T) {
	s := schedule.Linear(1000, 0.0001, 0.02)
	ddim := &DDIM{Schedule: s}
	eta := &DDIM{Schedule: s, Eta: 1}
	good := func() *tensor.Dense { return dummyDeter(false) }
	modelErr := errors.New("model broke")
	tests := []struct {
		name  string
		model ugo.Denoiser
		s     Solver
		x     *tensor.Dense
		opts  Options
		want  string
	}{
		{"nil model", nil, ddim, good(), Options{Steps: 5}, "needs a model"},
		{"nil scheduler", dummyModel, nil, good(), Options{Steps: 5}, "needs a model"},
		{"nil x", dummyModel, ddim, nil, Options{Steps: 5}, "x"},
		{"rank 3", dummyModel, ddim, tensor.New(tensor.WithShape(3, 8, 8), tensor.Of(tensor.Float32)), Options{Steps: 5}, "rank"},
		{"float64", dummyModel, ddim, tensor.New(tensor.WithShape(1, 1, 2, 2), tensor.Of(tensor.Float64)), Options{Steps: 5}, "float32"},
		{"zero steps", dummyModel, ddim, good(), Options{}, "steps"},
		{"too many steps", dummyModel, ddim, good(), Options{Steps: 1001}, "inference steps"},
		{"negative strength", dummyModel, ddim, good(), Options{Steps: 5, Strength: -0.5, Noise: noise.NewPCG(1)}, "strength"},
		{"NaN strength", dummyModel, ddim, good(), Options{Steps: 5, Strength: math.NaN(), Noise: noise.NewPCG(1)}, "strength"},
		{"strength above 1", dummyModel, ddim, good(), Options{Steps: 5, Strength: 1.5, Noise: noise.NewPCG(1)}, "strength"},
		{"strength too small", dummyModel, ddim, good(), Options{Steps: 5, Strength: 0.1, Noise: noise.NewPCG(1)}, "no step"},
		{"strength without noise", dummyModel, ddim, good(), Options{Steps: 5, Strength: 0.5}, "Noise is nil"},
		{"eta without noise", dummyModel, eta, good(), Options{Steps: 5}, "Noise is nil"},
		{"start after end", dummyModel, ddim, good(), Options{Steps: 5, StartStep: 6}, "start step"},
		{"negative start", dummyModel, ddim, good(), Options{Steps: 5, StartStep: -1}, "start step"},
		{"start and strength", dummyModel, ddim, good(), Options{Steps: 5, StartStep: 2, Strength: 0.5, Noise: noise.NewPCG(1)}, "not both"},
		{"model error", ugo.DenoiserFunc(func(context.Context, *tensor.Dense, *tensor.Dense, []float32) error { return modelErr }),
			ddim, good(), Options{Steps: 5}, "model broke"},
		{"model reshapes dst", ugo.DenoiserFunc(func(_ context.Context, dst, _ *tensor.Dense, _ []float32) error { return dst.Reshape(dN) }),
			ddim, good(), Options{Steps: 5}, "model output"},
		{"bad scheduler", dummyModel, &DDIM{Schedule: s, PredictionType: "x0"}, good(), Options{Steps: 5}, "prediction type"},
		{"no schedule", dummyModel, &DDPM{}, good(), Options{Steps: 5}, "Schedule"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Sample(context.Background(), tc.model, tc.s, tc.x, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// TestModelSeesTimesteps checks the timestep slice handed to the model.
func TestModelSeesTimesteps(t *testing.T) {
	d := &DDIM{Schedule: schedule.Linear(1000, 0.0001, 0.02), Spacing: schedule.Trailing}
	want, err := d.Timesteps(7)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	model := ugo.DenoiserFunc(func(ctx context.Context, dst, x *tensor.Dense, tt []float32) error {
		if len(tt) != 1 {
			t.Errorf("model got %d timesteps, want 1 shared by the batch", len(tt))
		}
		got = append(got, int(tt[0]))
		return dummyModel(ctx, dst, x, tt)
	})
	if err := Sample(context.Background(), model, d, dummyDeter(false), Options{Steps: 7}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("model saw %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("model saw %v, want %v", got, want)
		}
	}
}
