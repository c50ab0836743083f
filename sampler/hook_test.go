package sampler

import (
	"context"
	"errors"
	"math"
	"runtime/debug"
	"slices"
	"testing"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/schedule"
)

// hookSolvers returns one or more configurations of every Solver.
func hookSolvers() map[string]Solver {
	s := schedule.ScaledLinear(1000, 0.00085, 0.012)
	clip := Clip{ClipSample: true}
	return map[string]Solver{
		"ddim":          &DDIM{Schedule: s, StepsOffset: 1},
		"ddim_clipped":  &DDIM{Schedule: s, Clip: clip, UseClippedModelOutput: true, SetAlphaToOne: true},
		"ddim_eta":      &DDIM{Schedule: s, Eta: 0.7, Clip: Clip{Threshold: Threshold{Thresholding: true, SampleMaxValue: 1.5}}},
		"ddpm":          &DDPM{Schedule: s, Clip: clip},
		"ddpm_v":        &DDPM{Schedule: s, PredictionType: schedule.PredictV},
		"pndm_plms":     &PNDM{Schedule: s, SkipPRKSteps: true},
		"pndm_prk":      &PNDM{Schedule: s},
		"dpm2m":         &DPMSolverMultistep{Schedule: s, LowerOrderFinal: true},
		"dpm3_karras":   &DPMSolverMultistep{Schedule: s, SolverOrder: 3, LowerOrderFinal: true, UseKarrasSigmas: true},
		"dpm2m_sde":     &DPMSolverMultistep{Schedule: s, Algorithm: SDEDPMSolverPP, Threshold: Threshold{Thresholding: true, SampleMaxValue: 1.2}},
		"unipc2":        &UniPC{Schedule: s, LowerOrderFinal: true},
		"unipc3_bh1":    &UniPC{Schedule: s, SolverOrder: 3, SolverType: BH1, Threshold: Threshold{Thresholding: true}, FinalSigmas: FinalSigmaMin},
		"euler":         &Euler{Schedule: s},
		"euler_churn":   &Euler{Schedule: s, SChurn: 4, STMin: 0.5, STMax: 8},
		"euler_a":       &EulerAncestral{Schedule: s},
		"euler_a_v":     &EulerAncestral{Schedule: s, PredictionType: schedule.PredictV},
		"flow":          &FlowMatchEuler{Shift: 3},
		"flow_stochast": &FlowMatchEuler{Shift: 3, StochasticSampling: true},
	}
}

// wavyModel is a deterministic nonlinear model that allocates nothing.
func wavyModel() ugo.Denoiser {
	return ugo.DenoiserFunc(func(_ context.Context, dst, x *tensor.Dense, t []float32) error {
		d, xs := dst.Float32s(), x.Float32s()
		tt := float64(t[0]) / 1000
		for i, v := range xs {
			d[i] = 0.5*v + float32(0.3*math.Sin(float64(v)+tt))
		}
		return nil
	})
}

// recorder is a Hook that records its calls and optionally edits.
type recorder struct {
	x0Steps, sampleSteps []int
	t                    *testing.T
	traj                 *Trajectory
	solver               Solver
	x0                   func(at HookStep, x0 []float32) error
	sample               func(at HookStep, x []float32) error
}

func (r *recorder) X0(_ context.Context, at HookStep, x0 []float32) error {
	r.x0Steps = append(r.x0Steps, at.Step)
	r.traj, r.solver = at.Trajectory, at.Solver
	if at.Timestep() != at.Trajectory.Timesteps[at.Step] {
		r.t.Errorf("X0 at step %d: Timestep() %v, trajectory has %v", at.Step, at.Timestep(), at.Trajectory.Timesteps[at.Step])
	}
	if r.x0 != nil {
		return r.x0(at, x0)
	}
	return nil
}

func (r *recorder) Sample(_ context.Context, at HookStep, x []float32) error {
	r.sampleSteps = append(r.sampleSteps, at.Step)
	if at.Steps != at.Trajectory.Len() {
		r.t.Errorf("Sample: Steps %d, trajectory has %d", at.Steps, at.Trajectory.Len())
	}
	if r.sample != nil {
		return r.sample(at, x)
	}
	return nil
}

func runHooked(t *testing.T, s Solver, steps int, opts Options, seed uint64) ([]float32, error) {
	t.Helper()
	src := noise.NewPCG(seed)
	x, err := noise.NewTensor(src, 2, 3, 8, 8)
	if err != nil {
		t.Fatal(err)
	}
	opts.Steps, opts.Noise = steps, src
	err = Sample(context.Background(), wavyModel(), s, x, opts)
	return x.Float32s(), err
}

// TestHookNoOpIsIdentity checks, for every solver, from noise and from a
// Strength start, that a hook that edits nothing leaves the run bit for bit
// as without a hook, and that X0 sees every model call and Sample the input
// of every step and the final sample.
func TestHookNoOpIsIdentity(t *testing.T) {
	for name, s := range hookSolvers() {
		for _, strength := range []float64{0, 0.6} {
			for _, seed := range []uint64{1, 2} {
				plain, err := runHooked(t, s, 10, Options{Strength: strength}, seed)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				rec := &recorder{t: t}
				hooked, err := runHooked(t, s, 10, Options{Strength: strength, Hook: rec}, seed)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				equalBits(t, name, hooked, plain)
				n := rec.traj.Len()
				start := 0
				if strength > 0 {
					start = 10 - int(10*strength)
				}
				var wantX0, wantSample []int
				for i := start; i < n; i++ {
					wantX0 = append(wantX0, i)
					wantSample = append(wantSample, i)
				}
				wantSample = append(wantSample, n)
				if !slices.Equal(rec.x0Steps, wantX0) || !slices.Equal(rec.sampleSteps, wantSample) {
					t.Errorf("%s: X0 at %v, Sample at %v; want %v and %v", name, rec.x0Steps, rec.sampleSteps, wantX0, wantSample)
				}
				if rec.solver != s {
					t.Errorf("%s: the hook saw solver %v", name, rec.solver)
				}
			}
		}
	}
}

// TestHookX0Target replaces every step's x0 prediction by a fixed target:
// every solver then ends on the target, whatever the model says, since the
// last step of each lands on the clean sample it is given.
func TestHookX0Target(t *testing.T) {
	for name, s := range hookSolvers() {
		if name == "ddim" || name == "unipc3_bh1" {
			continue // ends at abar_0 (no set_alpha_to_one) or at sigma_min
		}
		var target []float32
		rec := &recorder{t: t, x0: func(_ HookStep, x0 []float32) error {
			if target == nil {
				target = make([]float32, len(x0))
				for i := range target {
					target[i] = float32(math.Sin(float64(i))) * 0.9
				}
			}
			copy(x0, target)
			return nil
		}}
		got, err := runHooked(t, s, 12, Options{Hook: rec}, 3)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		tol := 2e-3
		if name == "ddim_eta" || name == "ddpm_v" || name == "ddpm" || name == "pndm_plms" || name == "pndm_prk" {
			// Their last step lands on abar_0, not on the clean sample:
			// sqrt(1-abar_0) = 0.029 times the noise direction remains.
			tol = 0.15
		}
		for i := range got {
			if d := math.Abs(float64(got[i] - target[i])); d > tol {
				t.Errorf("%s: final sample [%d] = %v, target %v", name, i, got[i], target[i])
				break
			}
		}
	}
}

// TestHookErrors checks that a hook's error and a non-finite value left by
// a hook stop the run with a *StepError, and leave x at the input of the
// step.
func TestHookErrors(t *testing.T) {
	boom := errors.New("boom")
	s := hookSolvers()["dpm2m"]
	// The inputs of every step, from a plain run.
	var inputs [][]float32
	src := noise.NewPCG(5)
	x, _ := noise.NewTensor(src, 2, 3, 8, 8)
	inputs = append(inputs, slices.Clone(x.Float32s()))
	err := Sample(context.Background(), wavyModel(), s, x, Options{Steps: 10, Noise: src, Progress: func(p ProgressInfo) error {
		inputs = append(inputs, slices.Clone(p.Sample.Float32s()))
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	nan := float32(math.NaN())
	for _, c := range []struct {
		name   string
		hook   *recorder
		step   int
		method string
		nonFin bool
	}{
		{"X0 error", &recorder{x0: func(at HookStep, _ []float32) error {
			if at.Step == 2 {
				return boom
			}
			return nil
		}}, 2, "X0", false},
		{"Sample error", &recorder{sample: func(at HookStep, x []float32) error {
			if at.Step == 3 {
				x[0] = 42 // a half-done edit must not reach x
				return boom
			}
			return nil
		}}, 3, "Sample", false},
		{"final Sample error", &recorder{sample: func(at HookStep, _ []float32) error {
			if at.Step == 10 {
				return boom
			}
			return nil
		}}, 9, "Sample", false},
		{"X0 NaN", &recorder{x0: func(at HookStep, x0 []float32) error {
			if at.Step == 4 {
				x0[7] = nan
			}
			return nil
		}}, 4, "", true},
		{"Sample NaN", &recorder{sample: func(at HookStep, x []float32) error {
			if at.Step == 5 {
				x[1] = nan
			}
			return nil
		}}, 5, "", true},
	} {
		c.hook.t = t
		got, err := runHooked(t, s, 10, Options{Hook: c.hook}, 5)
		var se *StepError
		if !errors.As(err, &se) || se.Step != c.step || se.Resume != c.step {
			t.Fatalf("%s: error %v, want a *StepError at step %d", c.name, err, c.step)
		}
		if c.nonFin {
			if !errors.Is(err, ErrNonFinite) {
				t.Errorf("%s: %v does not wrap ErrNonFinite", c.name, err)
			}
		} else {
			var he *HookError
			if !errors.As(err, &he) || he.Method != c.method || !errors.Is(err, boom) {
				t.Errorf("%s: %v, want a *HookError from %s wrapping the hook's error", c.name, err, c.method)
			}
		}
		equalBits(t, c.name+": x after the error", got, inputs[c.step])
	}
}

// TestHookNoAllocPerStep checks that a hooked run allocates nothing per
// step, for every solver.
func TestHookNoAllocPerStep(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	hook := &nopHook{}
	for name, s := range hookSolvers() {
		allocs := func(steps int) float64 {
			x := latent(2, 4, 8, 8)
			src := noise.NewPCG(2)
			model := cheapModel()
			return testing.AllocsPerRun(3, func() {
				if err := Sample(context.Background(), model, s, x, Options{Steps: steps, Noise: src, Hook: hook}); err != nil {
					t.Fatal(err)
				}
			})
		}
		few, many := allocs(5), allocs(40)
		if many != few {
			t.Errorf("%s: %v allocations for 5 steps, %v for 40: the hooked run allocates per step", name, few, many)
		}
		if hook.x0 == 0 || hook.sample == 0 {
			t.Fatalf("%s: the hook was not called", name)
		}
	}
}

// nopHook counts its calls and edits nothing.
type nopHook struct{ x0, sample int }

func (h *nopHook) X0(context.Context, HookStep, []float32) error     { h.x0++; return nil }
func (h *nopHook) Sample(context.Context, HookStep, []float32) error { h.sample++; return nil }
