package sampler

import (
	"errors"
	"fmt"

	"github.com/ugo-diffusion/ugo/schedule"
)

// PNDM is the pseudo numerical method of Liu et al. (arXiv 2202.09778)
// with the semantics of diffusers' PNDMScheduler.
//
// With SkipPRKSteps (the pseudo linear multistep sampler, PLMS, that Stable
// Diffusion 1.x and 2.x folders configure) an n-step run calls the model
// n+1 times: at the timesteps d_0 > d_1 > ... > d_{n-1} of Spacing, with
// d_1 twice. The first call takes a DDIM-like step from d_0 to d_1, the
// second redoes that step with the mean of both noise predictions (a Heun
// step), and every later call combines the last up to four noise
// predictions with the Adams-Bashforth weights (3, -1)/2, (23, -16, 5)/12
// and (55, -59, 37, -9)/24.
//
// Without it (F-PNDM, diffusers' default) the run starts with three
// pseudo Runge-Kutta steps of four model calls each, from d_0 down to d_3
// with midpoints half a stride below each of d_0, d_1, d_2, whose
// first-call predictions seed the history; then n-3 fourth-order linear
// multistep steps from d_3 to the end. That is 12 + (n-3) model calls, and
// n must be at least 4.
//
// Every step is formula (9) of the paper:
//
//	x_prev = sqrt(abar_prev/abar_t) x_t - (abar_prev - abar_t) e / (abar_t sqrt(1-abar_prev) + sqrt(abar_t (1-abar_t) abar_prev))
//
// As in diffusers, a step from t lands on t - T/n whatever the spacing
// (abar_prev is alphas_cumprod[0], or 1 with SetAlphaToOne, below 0), and
// the history of noise predictions lives in the run's state (Trajectory.State),
// so that a resumed run restarts it.
type PNDM struct {
	// Schedule is the training noise schedule. Required.
	Schedule *schedule.Schedule
	// PredictionType says how to read the model output ("" = schedule.PredictEpsilon);
	// schedule.PredictSample is not supported, as in diffusers.
	PredictionType schedule.PredictionType
	// SetAlphaToOne makes the final step land on alphas_cumprod = 1
	// rather than alphas_cumprod[0] (diffusers' default for this class:
	// false).
	SetAlphaToOne bool
	// Spacing chooses the timesteps ("" = schedule.Leading), and
	// StepsOffset is added to them under Leading spacing.
	Spacing     schedule.Spacing
	StepsOffset int
	// SkipPRKSteps runs the linear multistep steps only (PLMS); false
	// starts with the Runge-Kutta steps, as diffusers' default.
	SkipPRKSteps bool
}

// NewPNDM returns a PNDM configured from a diffusers scheduler
// configuration with the keys PNDMScheduler reads (the schedule,
// prediction_type, set_alpha_to_one, timestep_spacing, steps_offset,
// skip_prk_steps), and that class's defaults for the keys cfg does not
// give: skip_prk_steps false, set_alpha_to_one false, leading spacing.
// The class has no rescale_betas_zero_snr key, so that key does not apply,
// as in diffusers. The sample prediction type and the sigmoid beta
// schedule, which diffusers does not implement for this class, are refused
// with a *schedule.FieldError.
func NewPNDM(cfg schedule.Config) (*PNDM, error) {
	if err := refuseSigmoid(&cfg, "PNDMScheduler"); err != nil {
		return nil, err
	}
	if cfg.PredictionType == schedule.PredictSample {
		return nil, fieldError("prediction_type", `"sample" is not supported by PNDMScheduler`)
	}
	// PNDMScheduler has no rescale_betas_zero_snr key: diffusers ignores
	// it for this class.
	cfg.RescaleBetasZeroSNR = false
	s, err := cfg.Schedule()
	if err != nil {
		return nil, err
	}
	d := &PNDM{
		Schedule:       s,
		PredictionType: cfg.PredictionType,
		SetAlphaToOne:  cfg.Given("set_alpha_to_one") && cfg.SetAlphaToOne,
		Spacing:        spacingFor(&cfg, schedule.Leading),
		StepsOffset:    cfg.StepsOffset,
		SkipPRKSteps:   cfg.Given("skip_prk_steps") && cfg.SkipPRKSteps,
	}
	if err := d.check(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *PNDM) check() error {
	if d == nil || d.Schedule == nil || d.Schedule.Len() == 0 {
		return errors.New("sampler: PNDM needs a non-empty Schedule")
	}
	if predictionOrDefault(d.PredictionType) == schedule.PredictSample {
		return errors.New("sampler: PNDM does not support the sample prediction type")
	}
	return checkDiscrete("PNDM", d.StepsOffset, d.PredictionType)
}

// Trajectory returns the trajectory of an n-step run: n+1 model calls (1 for n = 1)
// with SkipPRKSteps, 12 + (n-3) without, at the timesteps described on the
// type; no input scaling, unit initial noise, no step noise, and five
// state buffers (three earlier noise predictions, the sample that a
// Runge-Kutta step or the second PLMS call restarts from, and the
// Runge-Kutta sum).
func (d *PNDM) Trajectory(n int) (*Trajectory, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	if !d.SkipPRKSteps && n < 4 {
		return nil, fmt.Errorf("sampler: PNDM with Runge-Kutta steps needs at least 4 steps, got %d", n)
	}
	ts, err := discreteTimesteps(d.Schedule, n, d.Spacing, d.StepsOffset)
	if err != nil {
		return nil, err
	}
	calls := ts
	switch {
	case !d.SkipPRKSteps:
		// diffusers: the four largest timesteps in ascending order, each
		// followed by itself plus half a stride, [:-1].repeat(2)[1:-1],
		// reversed; then the list from d_3 on.
		half := d.Schedule.Len() / n / 2
		var pts [8]int
		for k := range 4 {
			a := ts[3-k] // ascending order: the four smallest timesteps
			pts[2*k], pts[2*k+1] = a, a+half
		}
		var rep [14]int
		for k, v := range pts[:7] {
			rep[2*k], rep[2*k+1] = v, v
		}
		calls = make([]int, 0, 12+n-3)
		for k := 12; k >= 1; k-- {
			calls = append(calls, rep[k])
		}
		calls = append(calls, ts[3:]...)
	case n > 1:
		calls = make([]int, 0, n+1)
		calls = append(calls, ts[0], ts[1])
		calls = append(calls, ts[1:]...)
	}
	for _, t := range calls {
		if t >= d.Schedule.Len() {
			return nil, fmt.Errorf("sampler: PNDM timestep %d outside the schedule [0, %d)", t, d.Schedule.Len())
		}
	}
	p := &Trajectory{
		Timesteps: make([]float32, len(calls)),
		Sigmas:    make([]float32, len(calls)+1),
		Noisy:     make([]bool, len(calls)),
		State:     5,
	}
	for i, t := range calls {
		p.Timesteps[i] = float32(t)
		p.Sigmas[i] = sigmaOf(abarAt(d.Schedule, t))
	}
	p.Sigmas[len(calls)] = sigmaOf(d.finalAbar())
	return p, nil
}

func (d *PNDM) finalAbar() float32 {
	if d.SetAlphaToOne {
		return 1
	}
	return abarAt(d.Schedule, 0)
}

// StepAt performs call i of p (diffusers' PNDMScheduler.step_plms) in
// float32, writing the next sample into dst (which may alias in.Sample)
// and the prediction of the clean sample that the combined noise
// prediction implies into in.X0. in.StateSteps counts the calls of the run
// so far (diffusers' counter).
func (d *PNDM) StepAt(dst []float32, p *Trajectory, i int, in StepInput) error {
	if err := d.check(); err != nil {
		return err
	}
	if err := p.checkStep(dst, i, &in, false); err != nil {
		return err
	}
	if p.State < 5 {
		return fmt.Errorf("sampler: PNDM trajectory has %d state buffers, want 5", p.State)
	}
	T := d.Schedule.Len()
	// diffusers counts the run's calls (its counter) and derives the
	// steps n from the trajectory's length: n+1 calls for n > 1 steps, or
	// 12 + (n-3) with Runge-Kutta steps.
	n := p.Len() - 1
	if !d.SkipPRKSteps {
		n = p.Len() - 9
	}
	n = max(n, 1)
	counter := in.StateSteps
	prk := !d.SkipPRKSteps && counter < 12
	t := int(p.Timesteps[i])
	prev := t - T/n
	switch {
	case prk:
		// step_prk: odd calls step to their own timestep, even ones to
		// half a stride below; all start from the group's first sample
		// at the group's first timestep.
		prev = t
		if counter%2 == 0 {
			prev = t - T/n/2
		}
		t = int(p.Timesteps[counter/4*4])
	case counter == 1:
		prev, t = t, t+T/n
	}
	if t < 0 || t >= T {
		return fmt.Errorf("sampler: PNDM step %d at timestep %d outside the schedule [0, %d)", i, t, T)
	}
	// ets: State[0] newest .. State[2] oldest of the earlier predictions
	// still kept; cur: State[3].
	ets, cur, acc := in.State[:3], in.State[3], in.State[4]
	kept := 0 // earlier predictions among ets that the formula uses
	switch {
	case counter == 0, counter == 1:
		kept = 0
	default:
		kept = min(counter-1, 3)
	}
	m, s := in.ModelOutput, in.Sample
	at := abarAt(d.Schedule, t)
	ap := d.finalAbar()
	if prev >= 0 {
		ap = abarAt(d.Schedule, prev)
	}
	bt, bp := 1-at, 1-ap
	sat, sbt := sqrt32(at), sqrt32(bt)
	sc := sqrt32(ap / at)
	denom := float32(at*sqrt32(bp)) + sqrt32(float32(at*bt)*ap)
	diff := ap - at
	v := predictionOrDefault(d.PredictionType) == schedule.PredictV
	const (
		w4 = float32(1.0 / 24)
		w6 = float32(1.0 / 6)
		w3 = float32(1.0 / 3)
	)
	// noiseAt returns the combined noise prediction of element j and the
	// sample it steps from, reading the state as it is before this call.
	noiseAt := func(j int) (e, x float32) {
		x = s[j]
		switch {
		case prk:
			e = m[j]
			if counter%4 == 3 {
				e = acc[j] + float32(w6*e)
			}
			if counter%4 != 0 {
				x = cur[j]
			}
		case counter == 0:
			e = m[j]
		case counter == 1:
			e = (m[j] + ets[0][j]) / 2
			x = cur[j]
		case kept == 1:
			e = (float32(3*m[j]) - ets[0][j]) / 2
		case kept == 2:
			e = (float32(float32(23*m[j])-float32(16*ets[0][j])) + float32(5*ets[1][j])) / 12
		default:
			e = w4 * (float32(float32(float32(55*m[j])-float32(59*ets[0][j]))+float32(37*ets[1][j])) - float32(9*ets[2][j]))
		}
		if v {
			e = float32(sat*e) + float32(sbt*x)
		}
		return e, x
	}
	hook := in.X0Hook != nil
	x0buf := in.hookBuffer(hook)
	if hook {
		for j := range s {
			e, x := noiseAt(j)
			x0buf[j] = (x - float32(sbt*e)) / sat
		}
		if err := in.X0Hook(x0buf); err != nil {
			return err
		}
	}
	for j := range s {
		e, x := noiseAt(j)
		// The state updates of the call, after noiseAt has read it.
		switch {
		case prk && counter%4 == 0:
			acc[j] = w6 * m[j]
			cur[j] = x
		case prk && counter%4 != 3:
			acc[j] += float32(w3 * m[j])
		case !prk && counter == 0:
			cur[j] = x
		}
		x0 := (x - float32(sbt*e)) / sat
		if hook && x0buf[j] != x0 && sbt > 0 {
			// The noise that the edited x0 implies.
			e = (x - float32(sat*x0buf[j])) / sbt
		} else if x0buf != nil {
			x0buf[j] = x0
		}
		dst[j] = float32(sc*x) - float32(diff*e)/denom
	}
	if (prk && counter%4 == 0) || (!prk && counter != 1) {
		// The model output joins the history, newest first.
		ets[0], ets[1], ets[2] = ets[2], ets[0], ets[1]
		copy(ets[0], m)
	}
	return nil
}

// AddNoiseAt writes sqrt(abar) x0 + sqrt(1-abar) noise into dst for the
// timestep of call i of p (diffusers' add_noise). dst may alias x0 or
// noise.
func (d *PNDM) AddNoiseAt(dst, x0, noise []float32, p *Trajectory, i int) error {
	if err := d.check(); err != nil {
		return err
	}
	if p == nil || i < 0 || i >= p.Len() {
		return fmt.Errorf("sampler: add noise at step %d outside the trajectory", i)
	}
	return addNoiseAt(d.Schedule, dst, x0, noise, int(p.Timesteps[i]))
}
