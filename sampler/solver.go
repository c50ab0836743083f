package sampler

import (
	"errors"
	"fmt"
	"math"

	"github.com/ugo-diffusion/ugo/schedule"
)

// Solver is a sampling algorithm that Sample drives: DDIM, DDPM, PNDM,
// DPMSolverMultistep, UniPC, Euler, EulerAncestral and FlowMatchEuler
// implement it.
//
// A Solver splits a run into a per-run Trajectory, computed once by Trajectory(n)
// (diffusers' set_timesteps), and steps addressed by their index in it
// (diffusers' step with its step_index). All per-run state lives in the
// Trajectory and in the buffers of the caller (StepInput.PrevX0 carries the
// history of multistep solvers), never in the Solver, so that one Solver
// value may drive concurrent runs.
type Solver interface {
	// Trajectory returns the trajectory of an n-step run. It fails on a bad
	// configuration or an n the solver cannot split the schedule into.
	Trajectory(n int) (*Trajectory, error)
	// StepAt performs step i of trajectory p: it reads the model output at
	// p.Timesteps[i] for the sample in.Sample at noise level p.Sigmas[i]
	// and writes the sample of step i+1 into dst, which may alias
	// in.Sample. in.Noise is read when p.Noisy[i]; in.PrevX0 when
	// p.Multistep. in.X0 receives the prediction of the clean sample (a
	// multistep solver's history for the next step). in.Timestep and
	// in.Prev are ignored.
	StepAt(dst []float32, p *Trajectory, i int, in StepInput) error
	// AddNoiseAt writes into dst the sample that enters step i of p when
	// the clean sample is x0 and the standard normal noise is noise, for
	// img2img starts (diffusers' add_noise at timesteps[i]). dst may alias
	// x0 or noise.
	AddNoiseAt(dst, x0, noise []float32, p *Trajectory, i int) error
}

// Trajectory is the schedule of one n-step run, as a Solver computes it: the
// timesteps at which the model is called, the noise levels the sample
// passes through and what the loop must do around each model call. Sample
// computes it once per call; a hand-written loop calls Solver.Trajectory and
// follows the fields' documentation, as Sample does.
//
// The sample x of a run lives in the solver's own parametrisation: for
// DDIM, DDPM and DPMSolverMultistep it is the variance-preserving x_t =
// sqrt(abar) x0 + sqrt(1-abar) eps, which the model sees as it is; for the
// Euler samplers it is k-diffusion's x0 + sigma eps, which the model sees
// divided by InputNorm[i] = sqrt(sigma^2+1) (that is, as x_t again).
type Trajectory struct {
	// Timesteps[i] is the timestep at which the model is called in step
	// i, len n. It is fractional where the solver's noise level falls
	// between training steps (the Euler samplers on linspace spacing or
	// Karras sigmas); ugo.Denoiser accepts that.
	Timesteps []float32
	// Sigmas[i] for i < n is the noise level sigma = sqrt((1-abar)/abar)
	// of the sample entering step i, and Sigmas[n] that of the final
	// sample (0 for a clean one). nil when a Solver does not compute them.
	// For FlowMatchEuler they are the flow levels s of x_s = (1-s) x0 + s
	// eps instead.
	Sigmas []float32
	// InputNorm, when not nil, holds n divisors: the model is called on
	// x / InputNorm[i] (diffusers' scale_model_input, 1/c_in of
	// k-diffusion). nil means the model sees x itself.
	InputNorm []float32
	// InitNoiseSigma is the standard deviation of the initial sample:
	// a run from noise starts from standard normal noise times
	// InitNoiseSigma (diffusers' init_noise_sigma). 0 means 1.
	InitNoiseSigma float32
	// Noisy[i] reports whether step i consumes a vector of standard
	// normal noise (StepInput.Noise), len n.
	Noisy []bool
	// Multistep reports that a step reads the clean-sample prediction of
	// the step before it (StepInput.PrevX0) when there is one.
	Multistep bool
	// State is the number of buffers of the sample's length that the
	// solver keeps across the steps of a run (StepInput.State): the longer
	// history of third-order and predictor-corrector solvers. 0 for most
	// solvers.
	State int
}

// Len returns the number of steps n of the trajectory.
func (p *Trajectory) Len() int { return len(p.Timesteps) }

// initSigma returns InitNoiseSigma with 0 read as 1.
func (p *Trajectory) initSigma() float32 {
	if p.InitNoiseSigma == 0 {
		return 1
	}
	return p.InitNoiseSigma
}

// check validates the shape of a trajectory (from any Solver) against n steps.
func (p *Trajectory) check(n int) error {
	if p == nil {
		return errors.New("sampler: solver returned a nil trajectory")
	}
	if len(p.Timesteps) != n || len(p.Noisy) != n {
		return fmt.Errorf("sampler: trajectory has %d timesteps and %d noise flags for %d steps", len(p.Timesteps), len(p.Noisy), n)
	}
	if p.Sigmas != nil && len(p.Sigmas) != n+1 {
		return fmt.Errorf("sampler: trajectory has %d sigmas for %d steps, want %d", len(p.Sigmas), n, n+1)
	}
	if p.State < 0 || p.State > maxState {
		return fmt.Errorf("sampler: trajectory asks for %d state buffers, want 0..%d", p.State, maxState)
	}
	if p.InputNorm != nil && len(p.InputNorm) != n {
		return fmt.Errorf("sampler: trajectory has %d input norms for %d steps", len(p.InputNorm), n)
	}
	for i, t := range p.Timesteps {
		if !finite32(t) {
			return fmt.Errorf("sampler: trajectory timestep %d is %v", i, t)
		}
	}
	for i, c := range p.InputNorm {
		if !(c > 0 && finite32(c)) {
			return fmt.Errorf("sampler: trajectory input norm %d is %v, want a positive finite number", i, c)
		}
	}
	if s := p.initSigma(); !(s > 0 && finite32(s)) {
		return fmt.Errorf("sampler: trajectory initial noise sigma %v, want a positive finite number", s)
	}
	return nil
}

// checkStep validates the arguments common to every StepAt.
func (p *Trajectory) checkStep(dst []float32, i int, in *StepInput, needSigmas bool) error {
	if p == nil {
		return errors.New("sampler: step: nil trajectory")
	}
	n := p.Len()
	if i < 0 || i >= n {
		return fmt.Errorf("sampler: step %d outside the trajectory's %d steps", i, n)
	}
	if len(p.Noisy) != n {
		return fmt.Errorf("sampler: step: trajectory has %d noise flags for %d steps", len(p.Noisy), n)
	}
	if needSigmas && len(p.Sigmas) != n+1 {
		return fmt.Errorf("sampler: step: trajectory has %d sigmas for %d steps, want %d", len(p.Sigmas), n, n+1)
	}
	m := len(in.Sample)
	if m == 0 {
		return errors.New("sampler: step: empty sample")
	}
	if len(dst) != m {
		return fmt.Errorf("sampler: step: dst has %d values, sample has %d", len(dst), m)
	}
	if len(in.ModelOutput) != m {
		return fmt.Errorf("sampler: step: model output has %d values, sample has %d", len(in.ModelOutput), m)
	}
	if in.X0 != nil && len(in.X0) != m {
		return fmt.Errorf("sampler: step: X0 has %d values, sample has %d", len(in.X0), m)
	}
	if in.PrevX0 != nil && len(in.PrevX0) != m {
		return fmt.Errorf("sampler: step: PrevX0 has %d values, sample has %d", len(in.PrevX0), m)
	}
	if len(in.State) < p.State {
		return fmt.Errorf("sampler: step: the trajectory needs %d state buffers, got %d", p.State, len(in.State))
	}
	for j := range p.State {
		if len(in.State[j]) != m {
			return fmt.Errorf("sampler: step: state buffer %d has %d values, sample has %d", j, len(in.State[j]), m)
		}
	}
	if in.StateSteps < 0 || in.StateSteps > i {
		return fmt.Errorf("sampler: step %d: %d state steps, want 0..%d", i, in.StateSteps, i)
	}
	if p.Noisy[i] && len(in.Noise) != m {
		return fmt.Errorf("sampler: step %d needs %d noise values, got %d", i, m, len(in.Noise))
	}
	if b := in.batch(); b < 0 || m%b != 0 {
		return fmt.Errorf("sampler: step: %d values do not split into a batch of %d", m, in.Batch)
	}
	return nil
}

func finite32(v float32) bool { return v-v == 0 }

// maxState bounds Trajectory.State.
const maxState = 8

// roundTimestep is the integer timestep reported for a model timestep:
// the nearest integer, halves away from zero.
func roundTimestep(t float32) int { return int(math.Round(float64(t))) }

// discreteTrajectory builds the trajectory of a discreteScheduler; when sched is not nil it
// fills Sigmas, with final the alphas_cumprod of the final sample.
func discreteTrajectory(s discreteScheduler, n int, sched *schedule.Schedule, final float32) (*Trajectory, error) {
	if s == nil {
		return nil, errors.New("sampler: nil scheduler")
	}
	ts, err := s.Timesteps(n)
	if err != nil {
		return nil, err
	}
	if len(ts) != n {
		return nil, fmt.Errorf("sampler: scheduler returned %d timesteps for %d steps", len(ts), n)
	}
	p := &Trajectory{Timesteps: make([]float32, n), Noisy: make([]bool, n)}
	for i, t := range ts {
		p.Timesteps[i] = float32(t)
		p.Noisy[i] = s.NeedsNoise(t)
	}
	if sched != nil {
		p.Sigmas = make([]float32, n+1)
		for i, t := range ts {
			if t < 0 || t >= sched.Len() {
				return nil, fmt.Errorf("sampler: timestep %d outside the schedule [0, %d)", t, sched.Len())
			}
			p.Sigmas[i] = sigmaOf(abarAt(sched, t))
		}
		p.Sigmas[n] = sigmaOf(final)
	}
	return p, nil
}

func discreteStep(s discreteScheduler, dst []float32, p *Trajectory, i int, in StepInput) error {
	if s == nil {
		return errors.New("sampler: nil scheduler")
	}
	if p == nil || i < 0 || i >= p.Len() {
		return fmt.Errorf("sampler: step %d outside the trajectory", i)
	}
	t := int(p.Timesteps[i])
	in.Timestep, in.Prev = t, s.PrevTimestep(t, p.Len())
	in.PrevX0 = nil
	return s.Step(dst, in)
}

func discreteAddNoise(s discreteScheduler, dst, x0, noise []float32, p *Trajectory, i int) error {
	if s == nil {
		return errors.New("sampler: nil scheduler")
	}
	if p == nil || i < 0 || i >= p.Len() {
		return fmt.Errorf("sampler: add noise at step %d outside the trajectory", i)
	}
	return s.AddNoise(dst, x0, noise, int(p.Timesteps[i]))
}

// sigmaOf is diffusers' ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5 in
// float32.
func sigmaOf(abar float32) float32 { return sqrt32((1 - abar) / abar) }

// Trajectory returns the trajectory of an n-step DDIM run: the timesteps of
// Timesteps(n), no input scaling, unit initial noise.
func (d *DDIM) Trajectory(n int) (*Trajectory, error) {
	if _, err := d.check(); err != nil {
		return nil, err
	}
	return discreteTrajectory(d, n, d.Schedule, d.alphaPrev(-1))
}

// StepAt performs step i of p with Step (Solver interface).
func (d *DDIM) StepAt(dst []float32, p *Trajectory, i int, in StepInput) error {
	return discreteStep(d, dst, p, i, in)
}

// AddNoiseAt adds noise for the timestep of step i of p with AddNoise
// (Solver interface).
func (d *DDIM) AddNoiseAt(dst, x0, noise []float32, p *Trajectory, i int) error {
	return discreteAddNoise(d, dst, x0, noise, p, i)
}

// Trajectory returns the trajectory of an n-step DDPM run: the timesteps of
// Timesteps(n), no input scaling, unit initial noise.
func (d *DDPM) Trajectory(n int) (*Trajectory, error) {
	if _, err := d.check(); err != nil {
		return nil, err
	}
	return discreteTrajectory(d, n, d.Schedule, 1)
}

// StepAt performs step i of p with Step (Solver interface), from
// p.Timesteps[i] to p.Timesteps[i+1] (-1 after the last).
func (d *DDPM) StepAt(dst []float32, p *Trajectory, i int, in StepInput) error {
	if p == nil || i < 0 || i >= p.Len() {
		return fmt.Errorf("sampler: step %d outside the trajectory", i)
	}
	in.Timestep, in.Prev = int(p.Timesteps[i]), -1
	if i+1 < p.Len() {
		in.Prev = int(p.Timesteps[i+1])
	}
	in.PrevX0 = nil
	return d.Step(dst, in)
}

// AddNoiseAt adds noise for the timestep of step i of p with AddNoise
// (Solver interface).
func (d *DDPM) AddNoiseAt(dst, x0, noise []float32, p *Trajectory, i int) error {
	return discreteAddNoise(d, dst, x0, noise, p, i)
}

// FinalSigmas selects the noise level the last step of a DPM-Solver or
// Euler run lands on, with diffusers' final_sigmas_type names.
type FinalSigmas string

// The final_sigmas_type values of diffusers. The empty FinalSigmas means
// FinalZero.
const (
	// FinalZero ends on sigma = 0, a clean sample.
	FinalZero FinalSigmas = "zero"
	// FinalSigmaMin ends on the smallest training sigma, that of
	// timestep 0.
	FinalSigmaMin FinalSigmas = "sigma_min"
)

func (f FinalSigmas) validate() error {
	switch f {
	case "", FinalZero, FinalSigmaMin:
		return nil
	}
	return fmt.Errorf("sampler: unknown final sigmas type %q, want %q or %q", string(f), FinalZero, FinalSigmaMin)
}

// sigmaTable holds the training noise levels of a schedule as diffusers'
// k-diffusion-style schedulers compute them.
type sigmaTable struct {
	sig    []float32 // ((1-abar)/abar)^0.5 per training step, float32
	logSig []float64 // np.log of sig (in float32), widened
}

// newSigmaTable returns the sigmas of s. A zero alphas_cumprod at the last
// step (zero terminal SNR) is replaced by 2^-24, as diffusers does under
// rescale_betas_zero_snr; a zero anywhere else is an error.
func newSigmaTable(s *schedule.Schedule) (*sigmaTable, error) {
	ac := s.AlphasCumprod()
	T := len(ac)
	st := &sigmaTable{sig: make([]float32, T), logSig: make([]float64, T)}
	for i, a := range ac {
		if a == 0 && i == T-1 {
			a = 1.0 / (1 << 24)
		}
		if !(a > 0) {
			return nil, fmt.Errorf("sampler: alphas_cumprod[%d] = %v gives an infinite sigma", i, a)
		}
		st.sig[i] = sigmaOf(a)
		st.logSig[i] = float64(float32(math.Log(float64(st.sig[i]))))
	}
	return st, nil
}

// interp is np.interp(t, arange(T), sig) in float64.
func (st *sigmaTable) interp(t float64) float64 {
	T := len(st.sig)
	switch {
	case t <= 0:
		return float64(st.sig[0])
	case t >= float64(T-1):
		return float64(st.sig[T-1])
	}
	j := int(t)
	lo, hi := float64(st.sig[j]), float64(st.sig[j+1])
	if t == float64(j) {
		return lo
	}
	slope := hi - lo
	return float64(slope*(t-float64(j))) + lo
}

// sigmaToT is diffusers' _sigma_to_t: the fractional timestep whose sigma
// is sigma, interpolating linearly in log sigma between training steps
// and clamping to [0, T-1].
func (st *sigmaTable) sigmaToT(sigma float64) float64 {
	T := len(st.logSig)
	if T < 2 {
		return 0
	}
	// diffusers calls _sigma_to_t on one numpy float64 sigma at a time
	// against the float32 log sigmas, and numpy's value-based casting then
	// computes the distances and the weight in float32.
	ls := float32(math.Log(math.Max(sigma, 1e-10)))
	// low = the last index whose log sigma is <= ls, clamped to [0, T-2].
	lo, hi := 0, T // count of entries <= ls by binary search
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if float32(st.logSig[mid]) <= ls {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	low := min(max(lo-1, 0), T-2)
	l, h := float32(st.logSig[low]), float32(st.logSig[low+1])
	w := (l - ls) / (l - h)
	w = min(max(w, 0), 1)
	return float64(float64(1-w)*float64(low)) + float64(float64(w)*float64(low+1))
}

// linspace is np.linspace(start, stop, n) in float64.
func linspace(start, stop float64, n int) []float64 {
	y := make([]float64, n)
	if n == 1 {
		y[0] = start
		return y
	}
	step := (stop - start) / float64(n-1)
	for i := range y {
		y[i] = float64(float64(i)*step) + start
	}
	y[n-1] = stop
	return y
}

// karras returns the n noise levels of Karras et al. (arXiv 2206.00364,
// eq. 5) with rho = 7 from sigmaMax down to sigmaMin, as diffusers'
// _convert_to_karras.
func karras(sigmaMin, sigmaMax float64, n int) []float64 {
	const rho = 7.0
	ramp := linspace(0, 1, n)
	minInv := math.Pow(sigmaMin, 1/rho)
	maxInv := math.Pow(sigmaMax, 1/rho)
	out := make([]float64, n)
	for i, r := range ramp {
		out[i] = math.Pow(maxInv+float64(r*(minInv-maxInv)), rho)
	}
	return out
}
