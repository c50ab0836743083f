package sampler

import (
	"errors"
	"fmt"
	"math"

	"github.com/ugo-diffusion/ugo/schedule"
)

// DDPM is the ancestral sampler of denoising diffusion probabilistic models
// (Ho et al., arXiv 2006.11239) with the semantics of diffusers'
// DDPMScheduler: a step lands on the next timestep of the run's list (the
// rule of diffusers since v0.16; for leading spacing that is t - T/n), the
// last step lands on alphas_cumprod = 1, and every step but one at t = 0
// draws noise.
//
// Fields left at their zero value take diffusers' defaults where noted. A
// DDPM holds no per-run state.
type DDPM struct {
	// Schedule is the training noise schedule. Required.
	Schedule *schedule.Schedule
	// VarianceType selects the step noise ("" = schedule.FixedSmall).
	// With beta~ = (1-abar_prev)/(1-abar_t) beta_t the posterior variance
	// (clamped below at 1e-20) and beta_t = 1 - abar_t/abar_prev the
	// step's forward variance, schedule.FixedSmall and schedule.FixedSmallLog add
	// sqrt(beta~) z (the latter computed as exp(log(beta~)/2), as diffusers
	// does), schedule.FixedLarge and schedule.FixedLargeLog add sqrt(beta_t) z. diffusers'
	// step takes the square root of log(beta_t) for fixed_large_log, which
	// is NaN; DDPM reads it as the log-variance it is documented to be. The
	// learned variance types need a model with twice the channels and are
	// not supported.
	VarianceType schedule.VarianceType
	// PredictionType says how to read the model output ("" = schedule.PredictEpsilon).
	PredictionType schedule.PredictionType
	// Clip post-processes the predicted x0 exactly as in DDIM.
	Clip
	// Spacing chooses the inference timesteps ("" = schedule.Leading), and
	// StepsOffset is added to them under Leading spacing.
	Spacing     schedule.Spacing
	StepsOffset int
}

// NewDDPM returns a DDPM configured from a diffusers scheduler
// configuration, with DDPMScheduler's defaults for the keys cfg does not
// give (schedule.Config.Given). The learned variance types are refused
// with a *schedule.FieldError.
func NewDDPM(cfg schedule.Config) (*DDPM, error) {
	if err := refuseLearnedVariance(&cfg, "DDPMScheduler"); err != nil {
		return nil, err
	}
	s, err := cfg.Schedule()
	if err != nil {
		return nil, err
	}
	vt := schedule.FixedSmall
	if cfg.Given("variance_type") {
		vt = cfg.VarianceType
	}
	d := &DDPM{
		Schedule:       s,
		VarianceType:   vt,
		PredictionType: cfg.PredictionType,
		Clip:           clipFromConfig(&cfg),
		Spacing:        spacingFor(&cfg, schedule.Leading),
		StepsOffset:    cfg.StepsOffset,
	}
	if _, err := d.check(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *DDPM) check() (clipping, error) {
	if d == nil || d.Schedule == nil || d.Schedule.Len() == 0 {
		return clipping{}, errors.New("sampler: DDPM needs a non-empty Schedule")
	}
	switch d.VarianceType {
	case "", schedule.FixedSmall, schedule.FixedSmallLog, schedule.FixedLarge, schedule.FixedLargeLog:
	default:
		return clipping{}, fmt.Errorf("sampler: DDPM variance type %q not supported, want %q, %q, %q or %q",
			string(d.VarianceType), schedule.FixedSmall, schedule.FixedSmallLog, schedule.FixedLarge, schedule.FixedLargeLog)
	}
	if err := checkDiscrete("DDPM", d.StepsOffset, d.PredictionType); err != nil {
		return clipping{}, err
	}
	return d.Clip.resolve()
}

// Timesteps returns the n descending timesteps of an n-step run, as
// diffusers' set_timesteps(n); n equal to the schedule length gives every
// training timestep, the classic DDPM sampler.
func (d *DDPM) Timesteps(n int) ([]int, error) {
	if _, err := d.check(); err != nil {
		return nil, err
	}
	return discreteTimesteps(d.Schedule, n, d.Spacing, d.StepsOffset)
}

// PrevTimestep returns the timestep after t in Timesteps(n), or -1 when t
// is the last one or not in the list (diffusers' previous_timestep). It
// computes the list, so a loop that steps many times should take it from
// Timesteps (or use StepAt, which reads the trajectory).
func (d *DDPM) PrevTimestep(t, n int) int {
	ts, err := d.Timesteps(n)
	if err != nil {
		return -1
	}
	for i, v := range ts {
		if v == t && i+1 < len(ts) {
			return ts[i+1]
		}
	}
	return -1
}

// NeedsNoise reports whether a step draws noise: at every t > 0.
func (d *DDPM) NeedsNoise(t int) bool { return t > 0 }

// stepCoefs returns alphas_cumprod at t and prev (1 for prev < 0).
func (d *DDPM) alphas(t, prev int) (at, ap float32) {
	at, ap = abarAt(d.Schedule, t), 1
	if prev >= 0 {
		ap = abarAt(d.Schedule, prev)
	}
	return at, ap
}

// noiseStd returns the standard deviation of the noise of a step from t to
// prev under the variance type, in float32 as diffusers.
func (d *DDPM) noiseStd(at, ap float32) float32 {
	beta := 1 - at/ap
	switch d.VarianceType {
	case schedule.FixedLarge:
		return sqrt32(beta)
	case schedule.FixedLargeLog:
		return float32(math.Exp(0.5 * float64(float32(math.Log(float64(beta))))))
	case schedule.FixedSmallLog:
		v := max((1-ap)/(1-at)*beta, 1e-20)
		return float32(math.Exp(float64(0.5 * float32(math.Log(float64(v))))))
	default:
		return sqrt32(max((1-ap)/(1-at)*beta, 1e-20))
	}
}

// Variance returns the variance of the noise a step from t to prev adds,
// the square of its standard deviation under VarianceType. For schedule.FixedSmall it
// is diffusers' _get_variance: max((1-abar_prev)/(1-abar_t) beta_t, 1e-20).
func (d *DDPM) Variance(t, prev int) (float32, error) {
	if _, err := d.check(); err != nil {
		return 0, err
	}
	T := d.Schedule.Len()
	if t < 0 || t >= T || prev >= t {
		return 0, fmt.Errorf("sampler: DDPM variance at timesteps (%d, %d): want 0 <= t < %d and prev < t", t, prev, T)
	}
	at, ap := d.alphas(t, prev)
	beta := 1 - at/ap
	switch d.VarianceType {
	case schedule.FixedLarge, schedule.FixedLargeLog:
		return beta, nil
	default:
		return max((1-ap)/(1-at)*beta, 1e-20), nil
	}
}

// Step performs one DDPM ancestral update (diffusers' DDPMScheduler.step,
// formula 7 of the paper) in float32, writing x_prev into dst:
//
//	x_prev = sqrt(abar_prev) beta_t / (1-abar_t) x0^
//	       + sqrt(alpha_t) (1-abar_prev) / (1-abar_t) x_t  +  std z
//
// with alpha_t = abar_t/abar_prev, beta_t = 1 - alpha_t, std from
// VarianceType and z = in.Noise, used only when Timestep > 0. dst may alias
// in.Sample.
func (d *DDPM) Step(dst []float32, in StepInput) error {
	c, err := d.check()
	if err != nil {
		return err
	}
	T := d.Schedule.Len()
	noisy := d.NeedsNoise(in.Timestep)
	if err := in.check(T, noisy); err != nil {
		return err
	}
	if err := checkStepDst(dst, &in); err != nil {
		return err
	}
	at, ap := d.alphas(in.Timestep, in.Prev)
	bt, bp := 1-at, 1-ap
	curAlpha := at / ap
	curBeta := 1 - curAlpha
	sa, sb := sqrt32(at), sqrt32(bt)
	c0 := (sqrt32(ap) * curBeta) / bt
	ct := (sqrt32(curAlpha) * bp) / bt
	var std float32
	if noisy {
		std = d.noiseStd(at, ap)
	}
	s := in.Sample
	conv := x0Map{pred: predictionOrDefault(d.PredictionType), a: sa, s: sb}
	x0buf, err := c.thresholdX0(in.X0, conv, in)
	if err != nil {
		return err
	}
	for i := range s {
		x0 := c.x0At(x0buf, conv, in, i)
		v := float32(c0*x0) + float32(ct*s[i])
		if noisy {
			v += float32(std * in.Noise[i])
		}
		dst[i] = v
	}
	return nil
}

// AddNoise writes sqrt(abar_t) x0 + sqrt(1-abar_t) noise into dst (diffusers'
// add_noise); dst may alias x0 or noise.
func (d *DDPM) AddNoise(dst, x0, noise []float32, t int) error {
	if _, err := d.check(); err != nil {
		return err
	}
	return addNoiseAt(d.Schedule, dst, x0, noise, t)
}
