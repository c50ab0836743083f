package sampler

import (
	"errors"
	"fmt"

	"github.com/ugo-diffusion/ugo/schedule"
)

// EulerAncestral is k-diffusion's ancestral Euler sampler ("Euler a") with
// the semantics of diffusers' EulerAncestralDiscreteScheduler. It runs on
// the sigma list of Euler (the same Spacing and StepsOffset rules, input
// norms and initial noise) and splits each step from sigma to sigma_next
// into a deterministic Euler step down to
//
//	sigma_up   = sqrt(sigma_next^2 (sigma^2 - sigma_next^2) / sigma^2)
//	sigma_down = sqrt(sigma_next^2 - sigma_up^2)
//
// followed by fresh noise of standard deviation sigma_up. Every step draws
// noise, the last one included (where sigma_up = 0), as diffusers does, so
// a noise.TorchCPU seeded like the torch.Generator reproduces a diffusers
// run.
//
// An EulerAncestral holds no per-run state.
type EulerAncestral struct {
	// Schedule is the training noise schedule. Required. A zero terminal
	// alphas_cumprod (zero SNR) is replaced by 2^-24, as diffusers does.
	Schedule *schedule.Schedule
	// PredictionType says how to read the model output ("" = schedule.PredictEpsilon).
	// diffusers supports epsilon and v_prediction only; schedule.PredictSample reads
	// the output as x0 itself.
	PredictionType schedule.PredictionType
	// Spacing chooses the timesteps ("" = schedule.Linspace), and
	// StepsOffset is added to them under Leading spacing.
	Spacing     schedule.Spacing
	StepsOffset int
	// UseKarrasSigmas replaces the sigmas with Karras' spacing, as
	// Euler's option does. diffusers' EulerAncestralDiscreteScheduler has
	// no such option; this is the "Euler a Karras" of k-diffusion users.
	UseKarrasSigmas bool
}

// NewEulerAncestral returns an EulerAncestral configured from a diffusers
// scheduler configuration with the keys EulerAncestralDiscreteScheduler
// reads (the schedule, prediction_type, timestep_spacing, steps_offset);
// see NewEuler about the defaults. That class has no use_karras_sigmas key,
// so a configuration's use_karras_sigmas does not apply, as in diffusers.
// The sample prediction type, which diffusers does not implement for this
// class, is refused with a *schedule.FieldError when cfg gives it.
func NewEulerAncestral(cfg schedule.Config) (*EulerAncestral, error) {
	if err := refuseSigmoid(&cfg, "EulerAncestralDiscreteScheduler"); err != nil {
		return nil, err
	}
	if cfg.Given("prediction_type") && cfg.PredictionType == schedule.PredictSample {
		return nil, fieldError("prediction_type", `"sample" is not supported by EulerAncestralDiscreteScheduler`)
	}
	s, err := cfg.Schedule()
	if err != nil {
		return nil, err
	}
	e := &EulerAncestral{
		Schedule:       s,
		PredictionType: cfg.PredictionType,
		Spacing:        spacingFor(&cfg, schedule.Linspace),
		StepsOffset:    cfg.StepsOffset,
	}
	if err := e.check(); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *EulerAncestral) check() error {
	if e == nil || e.Schedule == nil || e.Schedule.Len() == 0 {
		return errors.New("sampler: EulerAncestral needs a non-empty Schedule")
	}
	return checkKConfig(e.PredictionType, e.Spacing, e.StepsOffset, "")
}

// Trajectory returns the trajectory of an n-step run, 1 <= n <= T: Euler's sigmas,
// timesteps, input norms and initial noise, and noise at every step.
func (e *EulerAncestral) Trajectory(n int) (*Trajectory, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	p, err := kTrajectory(e.Schedule, n, e.Spacing, e.StepsOffset, e.UseKarrasSigmas, FinalZero, 0, 0)
	if err != nil {
		return nil, err
	}
	for i := range p.Noisy {
		p.Noisy[i] = true
	}
	return p, nil
}

// ancestral returns sigma_up and sigma_down of a step from sigma to next,
// in float32 as diffusers.
func ancestral(sigma, next float32) (up, down float32) {
	s2, n2 := sigma*sigma, next*next
	up = sqrt32(float32(n2*(s2-n2)) / s2)
	down = sqrt32(max(n2-float32(up*up), 0))
	return up, down
}

// StepAt performs step i of p (diffusers'
// EulerAncestralDiscreteScheduler.step) in float32, writing into dst
//
//	x0^ = x - sigma eps           (epsilon; v and sample read as in Euler)
//	dst = x + (x - x0^)/sigma * (sigma_down - sigma) + sigma_up z
//
// with z = in.Noise. dst may alias in.Sample.
func (e *EulerAncestral) StepAt(dst []float32, p *Trajectory, i int, in StepInput) error {
	if err := e.check(); err != nil {
		return err
	}
	if err := p.checkStep(dst, i, &in, true); err != nil {
		return err
	}
	if len(in.Noise) != len(in.Sample) {
		return fmt.Errorf("sampler: ancestral step %d needs %d noise values, got %d", i, len(in.Sample), len(in.Noise))
	}
	sigma, next := p.Sigmas[i], p.Sigmas[i+1]
	if !(sigma > 0) || next < 0 {
		return fmt.Errorf("sampler: ancestral step %d from sigma %v to %v, want sigma > 0 and next >= 0", i, sigma, next)
	}
	up, down := ancestral(sigma, next)
	c := float32(sigma*sigma) + 1
	cOut := -sigma / sqrt32(c)
	dt := down - sigma
	pred := predictionOrDefault(e.PredictionType)
	m, s, z := in.ModelOutput, in.Sample, in.Noise
	x0buf := in.hookBuffer(in.X0Hook != nil)
	if in.X0Hook != nil {
		for j := range s {
			x0buf[j] = kX0(pred, m[j], s[j], sigma, cOut, c)
		}
		if err := in.X0Hook(x0buf); err != nil {
			return err
		}
	}
	for j := range s {
		x := s[j]
		var x0 float32
		if in.X0Hook != nil {
			x0 = x0buf[j]
		} else {
			x0 = kX0(pred, m[j], x, sigma, cOut, c)
			if x0buf != nil {
				x0buf[j] = x0
			}
		}
		d := (x - x0) / sigma
		v := x + float32(d*dt)
		dst[j] = v + float32(z[j]*up)
	}
	return nil
}

// AddNoiseAt writes x0 + sigma_i noise into dst (diffusers' add_noise). dst
// may alias x0 or noise.
func (e *EulerAncestral) AddNoiseAt(dst, x0, noise []float32, p *Trajectory, i int) error {
	if err := e.check(); err != nil {
		return err
	}
	return kAddNoise(dst, x0, noise, p, i)
}
