package sampler

import (
	"errors"
	"fmt"
	"math"

	"github.com/ugo-diffusion/ugo/schedule"
)

// DDIM is the denoising diffusion implicit models sampler (Song et al.,
// arXiv 2010.02502) with the semantics of diffusers' DDIMScheduler,
// including its quirks: the previous timestep is always t - T/n (integer
// division) whatever the spacing, the last step lands on alphas_cumprod = 1
// or on alphas_cumprod[0] per SetAlphaToOne, and with Eta > 0 every step
// (the last one included) draws noise.
//
// Fields left at their zero value take diffusers' defaults where noted.
// A DDIM holds no per-run state: one value may drive concurrent runs as
// long as nobody modifies its fields.
type DDIM struct {
	// Schedule is the training noise schedule. Required.
	Schedule *schedule.Schedule
	// Eta scales the noise of each step: 0 (the default) is the
	// deterministic DDIM, 1 matches DDPM's posterior variance.
	Eta float64
	// PredictionType says how to read the model output ("" = schedule.PredictEpsilon).
	PredictionType schedule.PredictionType
	// Clip post-processes the predicted x0 (clip_sample or dynamic
	// thresholding).
	Clip
	// SetAlphaToOne makes the final step land on alphas_cumprod = 1 (a
	// clean sample); when false it lands on alphas_cumprod[0], as Stable
	// Diffusion's configuration does.
	SetAlphaToOne bool
	// Spacing chooses the inference timesteps ("" = schedule.Leading), and
	// StepsOffset is added to them under Leading spacing.
	Spacing     schedule.Spacing
	StepsOffset int
	// UseClippedModelOutput re-derives eps from the clipped x0 before the
	// update, as diffusers' step(use_clipped_model_output=True).
	UseClippedModelOutput bool
}

// NewDDIM returns a DDIM configured from a diffusers scheduler
// configuration. Eta is not part of it and starts at 0.
func NewDDIM(cfg schedule.Config) (*DDIM, error) {
	if err := refuseSigmoid(&cfg, "DDIMScheduler"); err != nil {
		return nil, err
	}
	s, err := cfg.Schedule()
	if err != nil {
		return nil, err
	}
	d := &DDIM{
		Schedule:       s,
		PredictionType: cfg.PredictionType,
		Clip:           clipFromConfig(&cfg),
		SetAlphaToOne:  cfg.SetAlphaToOne,
		Spacing:        spacingFor(&cfg, schedule.Leading),
		StepsOffset:    cfg.StepsOffset,
	}
	if _, err := d.check(); err != nil {
		return nil, err
	}
	return d, nil
}

// check validates the fields and returns the resolved clipping.
func (d *DDIM) check() (clipping, error) {
	if d == nil || d.Schedule == nil || d.Schedule.Len() == 0 {
		return clipping{}, errors.New("sampler: DDIM needs a non-empty Schedule")
	}
	if !(d.Eta >= 0 && d.Eta <= math.MaxFloat32) {
		return clipping{}, fmt.Errorf("sampler: DDIM eta %v, want a finite number >= 0", d.Eta)
	}
	if err := checkDiscrete("DDIM", d.StepsOffset, d.PredictionType); err != nil {
		return clipping{}, err
	}
	return d.Clip.resolve()
}

// Timesteps returns the n descending timesteps of an n-step run, as
// diffusers' set_timesteps(n) for the configured spacing and offset.
func (d *DDIM) Timesteps(n int) ([]int, error) {
	if _, err := d.check(); err != nil {
		return nil, err
	}
	return discreteTimesteps(d.Schedule, n, d.Spacing, d.StepsOffset)
}

// PrevTimestep returns t - T/n (integer division), diffusers' DDIM rule for
// every spacing.
func (d *DDIM) PrevTimestep(t, n int) int {
	return prevTimestep(d.Schedule, t, n)
}

// NeedsNoise reports whether a step draws noise: whenever Eta > 0.
func (d *DDIM) NeedsNoise(int) bool { return d.Eta > 0 }

// alphaPrev returns alphas_cumprod at prev, or the final value for prev < 0.
func (d *DDIM) alphaPrev(prev int) float32 {
	if prev >= 0 {
		return abarAt(d.Schedule, prev)
	}
	if d.SetAlphaToOne {
		return 1
	}
	return abarAt(d.Schedule, 0)
}

// Variance returns the DDIM posterior variance between timesteps t and
// prev, (1-abar_prev)/(1-abar_t) * (1 - abar_t/abar_prev), in float32 as
// diffusers' _get_variance; Eta^2 times it is the variance of a step's
// noise.
func (d *DDIM) Variance(t, prev int) (float32, error) {
	if _, err := d.check(); err != nil {
		return 0, err
	}
	T := d.Schedule.Len()
	if t < 0 || t >= T || prev >= T {
		return 0, fmt.Errorf("sampler: DDIM variance at timesteps (%d, %d) outside the schedule [0, %d)", t, prev, T)
	}
	return ddimVariance(abarAt(d.Schedule, t), d.alphaPrev(prev)), nil
}

func ddimVariance(at, ap float32) float32 {
	return ((1 - ap) / (1 - at)) * (1 - at/ap)
}

// Step performs one DDIM update (diffusers' DDIMScheduler.step, formula 12
// of the paper) in float32, writing x_prev into dst:
//
//	x_prev = sqrt(abar_prev) x0^ + sqrt(1 - abar_prev - sigma^2) eps^ + sigma z
//
// with sigma = Eta * sqrt(Variance(t, prev)) and z = in.Noise (used only when
// Eta > 0). dst may alias in.Sample.
func (d *DDIM) Step(dst []float32, in StepInput) error {
	c, err := d.check()
	if err != nil {
		return err
	}
	T := d.Schedule.Len()
	eta := float32(d.Eta)
	if err := in.check(T, eta > 0); err != nil {
		return err
	}
	if err := checkStepDst(dst, &in); err != nil {
		return err
	}
	at := abarAt(d.Schedule, in.Timestep)
	ap := d.alphaPrev(in.Prev)
	bt := 1 - at
	sa, sb := sqrt32(at), sqrt32(bt)
	std := eta * sqrt32(ddimVariance(at, ap))
	dirCoef := sqrt32(1 - ap - std*std)
	sap := sqrt32(ap)
	pred := predictionOrDefault(d.PredictionType)
	m, s := in.ModelOutput, in.Sample

	// predict returns x0^ and eps^ of element i before clipping.
	predict := func(i int) (x0, eps float32) {
		switch pred {
		case schedule.PredictV:
			return float32(sa*s[i]) - float32(sb*m[i]), float32(sa*m[i]) + float32(sb*s[i])
		case schedule.PredictSample:
			return m[i], (s[i] - float32(sa*m[i])) / sb
		default:
			return (s[i] - float32(sb*m[i])) / sa, m[i]
		}
	}
	x0buf := in.X0
	pre := c.threshold || in.X0Hook != nil
	if pre {
		// Every x0 first: the hook and thresholding see the whole batch.
		x0buf = in.hookBuffer(true)
		for i := range s {
			x0buf[i], _ = predict(i)
		}
		if err := in.callX0(x0buf); err != nil {
			return err
		}
		c.post(x0buf, in)
	}
	for i := range s {
		x0, eps := predict(i)
		if pre {
			x0 = x0buf[i]
		} else {
			x0 = c.clamp(x0)
			if x0buf != nil {
				x0buf[i] = x0
			}
		}
		if d.UseClippedModelOutput {
			eps = (s[i] - float32(sa*x0)) / sb
		}
		v := float32(sap*x0) + float32(dirCoef*eps)
		if eta > 0 {
			v += float32(std * in.Noise[i])
		}
		dst[i] = v
	}
	return nil
}

// AddNoise writes sqrt(abar_t) x0 + sqrt(1-abar_t) noise into dst (diffusers'
// add_noise); dst may alias x0 or noise.
func (d *DDIM) AddNoise(dst, x0, noise []float32, t int) error {
	if _, err := d.check(); err != nil {
		return err
	}
	return addNoiseAt(d.Schedule, dst, x0, noise, t)
}
