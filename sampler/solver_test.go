package sampler

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/internal/analytic"
	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/schedule"
)

// fieldModel returns the exact denoiser of a Gaussian field with
// correlation length l pixels under schedule s.
func fieldModel(t testing.TB, s *schedule.Schedule, l float64) ugo.Denoiser {
	t.Helper()
	f, err := analytic.NewField(l, l)
	if err != nil {
		t.Fatal(err)
	}
	return f.Denoiser(s.AlphaBar)
}

func rmsDiff(a, b []float32) float64 {
	var ss float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		ss += d * d
	}
	return math.Sqrt(ss / float64(len(a)))
}

// TestSolversAgreeOnODE: the deterministic solvers integrate the same
// probability-flow ODE, so from the same initial noise they converge to
// the same clean sample; DPM-Solver++(2M) gets there with fewer steps than
// the first-order DDIM and Euler.
func TestSolversAgreeOnODE(t *testing.T) {
	s := schedule.Linear(1000, 0.0001, 0.02) // sigma_max ~ 157: the Euler start matches x_T
	model := fieldModel(t, s, 2)
	init := make([]float32, 2*1*16*16)
	noise.NewPCG(5).Normal(init)
	run := func(sol Solver, steps int) []float32 {
		x := tensor.New(tensor.WithShape(2, 1, 16, 16), tensor.WithBacking(append([]float32(nil), init...)))
		if err := Sample(context.Background(), model, sol, x, Options{Steps: steps}); err != nil {
			t.Fatal(err)
		}
		return x.Float32s()
	}
	ref := run(&DDIM{Schedule: s, SetAlphaToOne: true, Spacing: schedule.Trailing}, 1000)
	solvers := []struct {
		name string
		s    Solver
	}{
		{"ddim", &DDIM{Schedule: s, SetAlphaToOne: true, Spacing: schedule.Trailing}},
		{"dpm1", &DPMSolverMultistep{Schedule: s, SolverOrder: 1, Spacing: schedule.Trailing}},
		{"dpm2m", &DPMSolverMultistep{Schedule: s, Spacing: schedule.Trailing}},
		{"dpm2m_heun", &DPMSolverMultistep{Schedule: s, SolverType: Heun, Spacing: schedule.Trailing}},
		{"euler", &Euler{Schedule: s, Spacing: schedule.Trailing}},
		{"dpm3", &DPMSolverMultistep{Schedule: s, SolverOrder: 3, Spacing: schedule.Trailing}},
		{"pndm", &PNDM{Schedule: s, SetAlphaToOne: true, SkipPRKSteps: true, Spacing: schedule.Trailing}},
		{"pndm_prk", &PNDM{Schedule: s, SetAlphaToOne: true, Spacing: schedule.Trailing}},
		{"unipc2", &UniPC{Schedule: s, LowerOrderFinal: true, Spacing: schedule.Trailing}},
		{"unipc3", &UniPC{Schedule: s, SolverOrder: 3, LowerOrderFinal: true, Spacing: schedule.Trailing}},
	}
	errs := map[string]map[int]float64{}
	for _, sc := range solvers {
		errs[sc.name] = map[int]float64{}
		for _, n := range []int{10, 20, 200} {
			e := rmsDiff(run(sc.s, n), ref)
			errs[sc.name][n] = e
			t.Logf("%-10s %3d steps: rms error %.2e", sc.name, n, e)
		}
		if e := errs[sc.name][200]; e > 0.01 {
			t.Errorf("%s: 200 steps are %.3g (rms) from the 1000-step DDIM solution", sc.name, e)
		}
	}
	for _, first := range []string{"ddim", "dpm1", "euler"} {
		for _, n := range []int{10, 20} {
			for _, high := range []string{"dpm2m", "dpm3", "pndm", "unipc2", "unipc3"} {
				if errs[high][n] >= errs[first][n]/2 {
					t.Errorf("%d steps: %s error %.3g not well below %s's %.3g", n, high, errs[high][n], first, errs[first][n])
				}
			}
		}
	}
	// DPM-Solver++ of order 1 is DDIM.
	if d := math.Abs(errs["dpm1"][20] - errs["ddim"][20]); d > 1e-3 {
		t.Errorf("order-1 DPM-Solver++ error %.4g differs from DDIM's %.4g", errs["dpm1"][20], errs["ddim"][20])
	}
}

// TestConcurrentRuns drives one value of each solver from several
// goroutines at once (run with -race): per-run state lives in the trajectory and
// the loop's buffers, so every run equals the sequential one.
func TestConcurrentRuns(t *testing.T) {
	for name, s := range schedulers(t) {
		t.Run(name, func(t *testing.T) {
			model := analyticModel(s.(interface{ sched() *schedule.Schedule }).sched(), 0.1)
			want := dummyDeter(false)
			if err := Sample(context.Background(), model, s, want, Options{Steps: 8, Noise: noise.NewPCG(9)}); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			got := make([]*tensor.Dense, 4)
			errs := make([]error, 4)
			for g := range got {
				wg.Add(1)
				go func() {
					defer wg.Done()
					got[g] = dummyDeter(false)
					errs[g] = Sample(context.Background(), model, s, got[g], Options{Steps: 8, Noise: noise.NewPCG(9)})
				}()
			}
			wg.Wait()
			for g := range got {
				if errs[g] != nil {
					t.Fatal(errs[g])
				}
				equalBits(t, "concurrent run", got[g].Float32s(), want.Float32s())
			}
		})
	}
}

// TestFractionalTimesteps checks what the model sees under the Euler
// samplers: fractional timesteps (linspace spacing and Karras sigmas), the
// input x/sqrt(sigma^2+1) and, for a run from noise, the initial noise
// scaled by InitNoiseSigma.
func TestFractionalTimesteps(t *testing.T) {
	s := schedule.ScaledLinear(1000, 0.00085, 0.012)
	for _, tc := range []struct {
		name string
		s    Solver
	}{
		{"euler_linspace", &Euler{Schedule: s}},
		{"euler_karras", &Euler{Schedule: s, UseKarrasSigmas: true}},
		{"euler_a_leading", &EulerAncestral{Schedule: s, Spacing: schedule.Leading, StepsOffset: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.s.Trajectory(7)
			if err != nil {
				t.Fatal(err)
			}
			x, err := noise.NewTensor(noise.NewPCG(1), 1, 1, 4, 4)
			if err != nil {
				t.Fatal(err)
			}
			first := clone(x).Float32s()
			var seen []float32
			fractional := false
			model := ugo.DenoiserFunc(func(ctx context.Context, dst, xt *tensor.Dense, tt []float32) error {
				if len(seen) == 0 {
					// The first input is noise * InitNoiseSigma / InputNorm[0].
					for i, v := range xt.Float32s() {
						want := float32(first[i]*p.InitNoiseSigma) / p.InputNorm[0]
						if v != want {
							t.Fatalf("model input [%d] = %v, want %v", i, v, want)
						}
					}
				}
				seen = append(seen, tt[0])
				fractional = fractional || tt[0] != float32(math.Round(float64(tt[0])))
				return dummyModel(ctx, dst, xt, tt)
			})
			var reported []float32
			err = Sample(context.Background(), model, tc.s, x, Options{Steps: 7, Noise: noise.NewPCG(2),
				Progress: func(pi ProgressInfo) error {
					reported = append(reported, pi.ModelTimestep)
					if pi.Timestep != int(math.Round(float64(pi.ModelTimestep))) {
						t.Errorf("step %d: Timestep %d for model timestep %v", pi.Step, pi.Timestep, pi.ModelTimestep)
					}
					return nil
				}})
			if err != nil {
				t.Fatal(err)
			}
			for i := range p.Timesteps {
				if seen[i] != p.Timesteps[i] || reported[i] != p.Timesteps[i] {
					t.Fatalf("model saw %v, progress reported %v, trajectory has %v", seen, reported, p.Timesteps)
				}
			}
			if tc.name != "euler_a_leading" && !fractional {
				t.Errorf("no fractional timestep in %v", seen)
			}
			if p.InitNoiseSigma <= 1 {
				t.Errorf("InitNoiseSigma %v, want the largest sigma (> 1)", p.InitNoiseSigma)
			}
		})
	}
}

// TestPlans checks trajectory properties for every solver and a range of step
// counts: lengths, decreasing sigmas ending at FinalSigmas, timesteps
// within the schedule and consistent with the sigmas.
func TestPlans(t *testing.T) {
	for name, s := range schedulers(t) {
		for _, n := range []int{1, 2, 3, 10, 25, 50, 999} {
			p, err := s.Trajectory(n)
			if err != nil {
				t.Fatalf("%s: Trajectory(%d): %v", name, n, err)
			}
			if err := p.check(n); err != nil {
				t.Fatalf("%s: Trajectory(%d): %v", name, n, err)
			}
			for i, ts := range p.Timesteps {
				if ts < 0 || ts > 999 || (i > 0 && ts > p.Timesteps[i-1]) {
					t.Fatalf("%s: Trajectory(%d) timesteps %v not descending in [0, 999]", name, n, p.Timesteps)
				}
			}
			if p.Sigmas != nil {
				if err := checkSigmas(p.Sigmas); err != nil {
					t.Fatalf("%s: Trajectory(%d): %v", name, n, err)
				}
			}
		}
	}
	// Karras sigmas span the training range, from sigma(T-1) to sigma(0).
	s := schedule.ScaledLinear(1000, 0.00085, 0.012)
	st, err := newSigmaTable(s)
	if err != nil {
		t.Fatal(err)
	}
	p, err := (&DPMSolverMultistep{Schedule: s, UseKarrasSigmas: true}).Trajectory(20)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(p.Sigmas[0]/st.sig[999]-1)) > 1e-6 || math.Abs(float64(p.Sigmas[19]/st.sig[0]-1)) > 1e-5 || p.Sigmas[20] != 0 {
		t.Errorf("Karras sigmas %v, want %v down to %v, then 0", p.Sigmas, st.sig[999], st.sig[0])
	}
	// sigmaToT inverts the table exactly at training steps.
	for _, i := range []int{0, 1, 500, 998, 999} {
		if got := st.sigmaToT(float64(st.sig[i])); math.Abs(got-float64(i)) > 1e-3 {
			t.Errorf("sigmaToT(sigma(%d)) = %v", i, got)
		}
	}
}

// TestZeroTerminalSNR: after rescale_betas_zero_snr the last sigma is
// that of alphas_cumprod = 2^-24 (about 4096), as in diffusers, and runs
// stay finite.
func TestZeroTerminalSNR(t *testing.T) {
	s := schedule.ScaledLinear(1000, 0.00085, 0.012).RescaleZeroTerminalSNR()
	for _, sol := range []Solver{
		&Euler{Schedule: s, Spacing: schedule.Trailing},
		&EulerAncestral{Schedule: s, Spacing: schedule.Trailing},
		&DPMSolverMultistep{Schedule: s, Spacing: schedule.Trailing, PredictionType: schedule.PredictV},
	} {
		p, err := sol.Trajectory(10)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(float64(p.Sigmas[0])-4096) > 1 {
			t.Errorf("%T: first sigma %v, want about 4096", sol, p.Sigmas[0])
		}
		x, _ := noise.NewTensor(noise.NewPCG(1), 1, 1, 4, 4)
		if err := Sample(context.Background(), analyticModel(s, 0.2), sol, x, Options{Steps: 10, Noise: noise.NewPCG(2)}); err != nil {
			t.Fatalf("%T: %v", sol, err)
		}
		if j := ugo.FirstNonFinite(x.Float32s()); j >= 0 {
			t.Errorf("%T: non-finite result at %d", sol, j)
		}
	}
}

// TestResumeWithoutHistory resumes a DPM-Solver++(2M) run without PrevX0:
// it restarts with a first-order step and stays close to the full run.
func TestResumeWithoutHistory(t *testing.T) {
	s := schedule.ScaledLinear(1000, 0.00085, 0.012)
	d := &DPMSolverMultistep{Schedule: s, LowerOrderFinal: true}
	model := fieldModel(t, s, 2)
	x0, _ := noise.NewTensor(noise.NewPCG(3), 2, 1, 16, 16)
	full, half := clone(x0), clone(x0)
	if err := Sample(context.Background(), model, d, full, Options{Steps: 20}); err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	err := Sample(context.Background(), model, d, half, Options{Steps: 20, Progress: func(p ProgressInfo) error {
		if p.Step == 9 {
			return stop
		}
		return nil
	}})
	if !errors.Is(err, stop) {
		t.Fatal(err)
	}
	if err := Sample(context.Background(), model, d, half, Options{Steps: 20, StartStep: 10}); err != nil {
		t.Fatal(err)
	}
	e := rmsDiff(half.Float32s(), full.Float32s())
	if e == 0 || e > 0.02 {
		t.Errorf("resume without history: rms difference %.3g from the full run, want small but nonzero", e)
	}
}

func TestSolverErrors(t *testing.T) {
	s := schedule.Linear(1000, 0.0001, 0.02)
	zeroMid, err := schedule.FromBetas(append(append(make([]float32, 0, 10), 0.1, 0.2, 1), 0.5, 0.5))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		s    Solver
		n    int
		want string
	}{
		{"euler nil schedule", &Euler{}, 10, "Schedule"},
		{"euler bad prediction", &Euler{Schedule: s, PredictionType: "x0"}, 10, "prediction type"},
		{"euler bad spacing", &Euler{Schedule: s, Spacing: "even"}, 10, "spacing"},
		{"euler negative offset", &Euler{Schedule: s, StepsOffset: -1}, 10, "offset"},
		{"euler bad final", &Euler{Schedule: s, FinalSigmas: "one"}, 10, "final sigmas"},
		{"euler negative churn", &Euler{Schedule: s, SChurn: -1}, 10, "s_churn"},
		{"euler NaN tmax", &Euler{Schedule: s, STMax: math.NaN()}, 10, "s_tmax"},
		{"euler zero steps", &Euler{Schedule: s}, 0, "inference steps"},
		{"euler too many steps", &Euler{Schedule: s}, 1001, "inference steps"},
		{"euler offset past end", &Euler{Schedule: s, Spacing: schedule.Leading, StepsOffset: 999}, 10, "offset"},
		{"euler interior zero SNR", &Euler{Schedule: zeroMid}, 3, "infinite sigma"},
		{"ancestral nil", (*EulerAncestral)(nil), 10, "Schedule"},
		{"ancestral bad prediction", &EulerAncestral{Schedule: s, PredictionType: "x0"}, 10, "prediction type"},
		{"dpm nil schedule", &DPMSolverMultistep{}, 10, "Schedule"},
		{"dpm order 4", &DPMSolverMultistep{Schedule: s, SolverOrder: 4}, 10, "order"},
		{"dpm algorithm", &DPMSolverMultistep{Schedule: s, Algorithm: "dpmsolver"}, 10, "algorithm"},
		{"dpm solver type", &DPMSolverMultistep{Schedule: s, SolverType: "bogacki"}, 10, "solver type"},
		{"dpm threshold max", &DPMSolverMultistep{Schedule: s, Threshold: Threshold{Thresholding: true, SampleMaxValue: -1}}, 10, "max value"},
		{"dpm threshold ratio", &DPMSolverMultistep{Schedule: s, Threshold: Threshold{Thresholding: true, DynamicThresholdingRatio: 2}}, 10, "ratio"},
		{"dpm repeated timesteps", &DPMSolverMultistep{Schedule: s}, 1000, "repeat"},
		{"dpm leading repeated", &DPMSolverMultistep{Schedule: s, Spacing: schedule.Leading}, 1000, "repeat"},
		{"dpm offset past end", &DPMSolverMultistep{Schedule: s, Spacing: schedule.Leading, StepsOffset: 900}, 10, "outside"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.s.Trajectory(tc.n)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Trajectory(%d): err = %v, want one mentioning %q", tc.n, err, tc.want)
			}
			// The same configuration fails Sample, and StepAt/AddNoiseAt
			// on a valid trajectory, without panicking.
			if err := Sample(context.Background(), dummyModel, tc.s, dummyDeter(false), Options{Steps: tc.n, Noise: noise.NewPCG(1)}); err == nil {
				t.Errorf("Sample succeeded")
			}
		})
	}
}

func TestStepAtErrors(t *testing.T) {
	s := schedule.Linear(1000, 0.0001, 0.02)
	v := make([]float32, 8)
	for name, sol := range map[string]Solver{
		"ddim":    &DDIM{Schedule: s},
		"dpm":     &DPMSolverMultistep{Schedule: s},
		"dpm_sde": &DPMSolverMultistep{Schedule: s, Algorithm: SDEDPMSolverPP},
		"euler":   &Euler{Schedule: s, SChurn: 1},
		"euler_a": &EulerAncestral{Schedule: s},
	} {
		p, err := sol.Trajectory(10)
		if err != nil {
			t.Fatal(err)
		}
		ok := StepInput{ModelOutput: v, Sample: v, Noise: v}
		tests := []struct {
			name string
			p    *Trajectory
			i    int
			dst  []float32
			in   StepInput
		}{
			{"nil trajectory", nil, 0, v, ok},
			{"negative step", p, -1, v, ok},
			{"step past end", p, 10, v, ok},
			{"short dst", p, 1, v[:4], ok},
			{"short output", p, 1, v, StepInput{ModelOutput: v[:3], Sample: v, Noise: v}},
			{"empty sample", p, 1, nil, StepInput{}},
		}
		if p.Noisy[1] {
			tests = append(tests, struct {
				name string
				p    *Trajectory
				i    int
				dst  []float32
				in   StepInput
			}{"no noise", p, 1, v, StepInput{ModelOutput: v, Sample: v}})
		}
		if name != "ddim" {
			tests = append(tests,
				struct {
					name string
					p    *Trajectory
					i    int
					dst  []float32
					in   StepInput
				}{"short X0", p, 1, v, StepInput{ModelOutput: v, Sample: v, Noise: v, X0: v[:2]}},
				struct {
					name string
					p    *Trajectory
					i    int
					dst  []float32
					in   StepInput
				}{"truncated sigmas", &Trajectory{Timesteps: p.Timesteps, Sigmas: p.Sigmas[:3], Noisy: p.Noisy}, 1, v, ok},
			)
		}
		for _, tc := range tests {
			if err := sol.StepAt(tc.dst, tc.p, tc.i, tc.in); err == nil {
				t.Errorf("%s: StepAt with %s succeeded", name, tc.name)
			}
		}
		if err := sol.AddNoiseAt(v, v, v, p, 10); err == nil {
			t.Errorf("%s: AddNoiseAt past the trajectory succeeded", name)
		}
		if err := sol.AddNoiseAt(v, v[:2], v, p, 1); err == nil {
			t.Errorf("%s: AddNoiseAt with a short x0 succeeded", name)
		}
	}
	// History at the first step is a caller error.
	d := &DPMSolverMultistep{Schedule: s}
	p, _ := d.Trajectory(10)
	if err := d.StepAt(v, p, 0, StepInput{ModelOutput: v, Sample: v, PrevX0: v}); err == nil {
		t.Error("DPM StepAt with PrevX0 at step 0 succeeded")
	}
}

// TestSamplePlanErrors covers the Options that concern solvers with
// history, and trajectories from a broken custom Solver.
func TestSamplePlanErrors(t *testing.T) {
	s := schedule.Linear(1000, 0.0001, 0.02)
	d := &DPMSolverMultistep{Schedule: s}
	good := dummyDeter(false)
	for _, tc := range []struct {
		name string
		s    Solver
		opts Options
		want string
	}{
		{"PrevX0 without StartStep", d, Options{Steps: 5, PrevX0: dummyDeter(false)}, "StartStep"},
		{"PrevX0 wrong shape", d, Options{Steps: 5, StartStep: 2, PrevX0: tensor.New(tensor.WithShape(1, 1, 2, 2), tensor.Of(tensor.Float32))}, "PrevX0"},
		{"nil trajectory", badTrajectory(nil), Options{Steps: 5}, "nil trajectory"},
		{"short trajectory", badTrajectory(&Trajectory{Timesteps: make([]float32, 4), Noisy: make([]bool, 4)}), Options{Steps: 5}, "timesteps"},
		{"bad sigmas", badTrajectory(&Trajectory{Timesteps: make([]float32, 5), Noisy: make([]bool, 5), Sigmas: make([]float32, 5)}), Options{Steps: 5}, "sigmas"},
		{"bad norm", badTrajectory(&Trajectory{Timesteps: make([]float32, 5), Noisy: make([]bool, 5), InputNorm: make([]float32, 5)}), Options{Steps: 5}, "input norm"},
		{"NaN timestep", badTrajectory(&Trajectory{Timesteps: []float32{1, 2, float32(math.NaN()), 4, 5}, Noisy: make([]bool, 5)}), Options{Steps: 5}, "timestep"},
		{"negative init sigma", badTrajectory(&Trajectory{Timesteps: make([]float32, 5), Noisy: make([]bool, 5), InitNoiseSigma: -1}), Options{Steps: 5}, "initial noise"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Sample(context.Background(), dummyModel, tc.s, good, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// badTrajectory returns a Solver whose Trajectory returns p, a broken trajectory.
func badTrajectory(p *Trajectory) Solver { return badTrajectorySolver{p} }

type badTrajectorySolver struct{ p *Trajectory }

func (b badTrajectorySolver) Trajectory(int) (*Trajectory, error)                 { return b.p, nil }
func (b badTrajectorySolver) StepAt([]float32, *Trajectory, int, StepInput) error { return nil }
func (b badTrajectorySolver) AddNoiseAt([]float32, []float32, []float32, *Trajectory, int) error {
	return nil
}

// TestAncestralNoiseOrder: an EulerAncestral run draws one Normal call
// per step, the last one included, after the img2img draw.
func TestAncestralNoiseOrder(t *testing.T) {
	s := schedule.ScaledLinear(1000, 0.00085, 0.012)
	calls := 0
	src := countingSource{noise.NewPCG(1), &calls}
	x := dummyDeter(false)
	if err := Sample(context.Background(), dummyModel, &EulerAncestral{Schedule: s}, x, Options{Steps: 10, Noise: src, Strength: 0.5}); err != nil {
		t.Fatal(err)
	}
	if calls != 1+5 {
		t.Errorf("%d Normal calls, want 1 (img2img) + 5 (steps)", calls)
	}
	calls = 0
	if err := Sample(context.Background(), dummyModel, &Euler{Schedule: s}, x, Options{Steps: 10, Noise: src}); err != nil {
		t.Fatal(err)
	}
	if calls != 0 {
		t.Errorf("deterministic Euler drew noise %d times", calls)
	}
}

type countingSource struct {
	noise.Source
	n *int
}

func (c countingSource) Normal(dst []float32) { *c.n++; c.Source.Normal(dst) }
