package sampler

import (
	"errors"
	"fmt"
	"math"

	"github.com/ugo-diffusion/ugo/schedule"
)

// FlowMatchEuler is the Euler sampler of rectified-flow models (Stable
// Diffusion 3, FLUX), with the semantics of diffusers'
// FlowMatchEulerDiscreteScheduler. The sample is x_s = (1-s) x0 + s eps
// with the flow level s running from 1 (pure noise) down to 0; the model
// sees x_s itself at the timestep s*NumTrainTimesteps and predicts the
// velocity v = eps - x0 (schedule.PredictFlow), and each step is
//
//	x_next = x + (s_next - s) v
//
// the Euler step of the ODE dx/ds = v. With StochasticSampling the step
// instead re-noises the predicted clean sample x0 = x - s v to s_next with
// fresh noise: x_next = (1-s_next) x0 + s_next z.
//
// The levels of an n-step run, as diffusers' set_timesteps computes them:
// n values spaced linearly from 1 down to the smallest training level
// (1/T, shifted once by the static shift), then shifted, then optionally
// stretched to ShiftTerminal and respaced (Karras or exponential), then a
// final 0. The shift is static, s' = shift s / (1 + (shift-1) s), or,
// with DynamicShifting, depends on the image size through mu (see Mu):
// s' = e^mu / (e^mu + (1/s - 1)) for the exponential TimeShiftType, mu /
// (mu + (1/s - 1)) for the linear one. A larger shift spends more of the
// run at high noise, which larger images need.
//
// Trajectory.Sigmas holds the flow levels s (not the variance-preserving
// sigma of the other samplers), InputNorm is nil and InitNoiseSigma 1.
// A FlowMatchEuler holds no per-run state.
type FlowMatchEuler struct {
	// NumTrainTimesteps is T, the timestep scale: the model is called at
	// s*T (0 means 1000).
	NumTrainTimesteps int
	// Shift is the static shift (0 means 1, none). Ignored with
	// DynamicShifting.
	Shift float64
	// DynamicShifting shifts by mu, computed from ImageSeqLen with
	// BaseShift, MaxShift, BaseImageSeqLen and MaxImageSeqLen (see Mu),
	// in the form TimeShiftType names ("" = "exponential", or "linear").
	DynamicShifting                 bool
	ImageSeqLen                     int
	BaseShift, MaxShift             float64
	BaseImageSeqLen, MaxImageSeqLen int
	TimeShiftType                   string
	// ShiftTerminal, when not 0, stretches the shifted levels so that the
	// last one before the final 0 is ShiftTerminal (LTX-Video).
	ShiftTerminal float64
	// UseKarrasSigmas and UseExponentialSigmas respace the levels, between
	// the first and last of the shifted list, as Karras et al. (rho = 7)
	// or evenly in log s. At most one may be set.
	UseKarrasSigmas, UseExponentialSigmas bool
	// StochasticSampling replaces the Euler step by re-noising (see above):
	// every step then draws noise.
	StochasticSampling bool
}

// NewFlowMatchEuler returns a FlowMatchEuler configured from a diffusers
// scheduler configuration with the keys FlowMatchEulerDiscreteScheduler
// reads: num_train_timesteps, shift, use_dynamic_shifting, base_shift,
// max_shift, base_image_seq_len, max_image_seq_len, time_shift_type,
// shift_terminal, use_karras_sigmas, use_exponential_sigmas and
// stochastic_sampling. use_beta_sigmas and invert_sigmas (Mochi's
// inverted levels) are refused with a *schedule.FieldError. The class has
// no prediction_type: the model output is read as the flow velocity.
//
// With use_dynamic_shifting the sampler needs the image sequence length of
// each run (diffusers' pipelines pass mu to set_timesteps): set
// ImageSeqLen on the result, as in
//
//	f.ImageSeqLen = FlowImageSeqLen(latentH, latentW, 2) // SD3 and FLUX patchify 2x2
func NewFlowMatchEuler(cfg schedule.Config) (*FlowMatchEuler, error) {
	const class = "FlowMatchEulerDiscreteScheduler"
	if err := refuseUnsupported(&cfg, class, "use_beta_sigmas"); err != nil {
		return nil, err
	}
	if cfg.InvertSigmas {
		return nil, fieldError("invert_sigmas", "true is not supported by this module's %s", class)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f := &FlowMatchEuler{
		NumTrainTimesteps:    cfg.NumTrainTimesteps,
		Shift:                cfg.Shift,
		DynamicShifting:      cfg.UseDynamicShifting,
		BaseShift:            cfg.BaseShift,
		MaxShift:             cfg.MaxShift,
		BaseImageSeqLen:      cfg.BaseImageSeqLen,
		MaxImageSeqLen:       cfg.MaxImageSeqLen,
		TimeShiftType:        cfg.TimeShiftType,
		ShiftTerminal:        cfg.ShiftTerminal,
		UseKarrasSigmas:      cfg.UseKarrasSigmas,
		UseExponentialSigmas: cfg.UseExponentialSigmas,
		StochasticSampling:   cfg.StochasticSampling,
	}
	if err := f.checkConfig(); err != nil {
		return nil, err
	}
	return f, nil
}

// FlowImageSeqLen returns the image sequence length of a transformer that
// cuts an h x w latent into patch x patch tokens: (h/patch)*(w/patch), as
// diffusers' SD3 and FLUX pipelines compute it for Mu.
func FlowImageSeqLen(h, w, patch int) int {
	if patch <= 0 {
		return 0
	}
	return (h / patch) * (w / patch)
}

func (f *FlowMatchEuler) trainSteps() int {
	if f.NumTrainTimesteps == 0 {
		return 1000
	}
	return f.NumTrainTimesteps
}

func (f *FlowMatchEuler) shift() float64 {
	if f.Shift == 0 {
		return 1
	}
	return f.Shift
}

// Mu returns the dynamic shift for ImageSeqLen, diffusers'
// calculate_shift: the line through (BaseImageSeqLen, BaseShift) and
// (MaxImageSeqLen, MaxShift), evaluated at ImageSeqLen (not clamped).
func (f *FlowMatchEuler) Mu() float64 {
	m := (f.MaxShift - f.BaseShift) / float64(f.MaxImageSeqLen-f.BaseImageSeqLen)
	b := f.BaseShift - m*float64(f.BaseImageSeqLen)
	return float64(f.ImageSeqLen)*m + b
}

// checkConfig validates the fields that do not depend on the run.
func (f *FlowMatchEuler) checkConfig() error {
	if f == nil {
		return errors.New("sampler: nil FlowMatchEuler")
	}
	if T := f.NumTrainTimesteps; T < 0 || T > schedule.MaxTrainTimesteps {
		return fmt.Errorf("sampler: FlowMatchEuler NumTrainTimesteps %d, want 0 (1000) or 1..%d", T, schedule.MaxTrainTimesteps)
	}
	if s := f.Shift; !(s >= 0 && s <= math.MaxFloat32) {
		return fmt.Errorf("sampler: FlowMatchEuler Shift %v, want a positive finite number (0 = 1)", s)
	}
	if f.UseKarrasSigmas && f.UseExponentialSigmas {
		return errors.New("sampler: FlowMatchEuler: set at most one of UseKarrasSigmas and UseExponentialSigmas")
	}
	if !(f.ShiftTerminal >= 0 && f.ShiftTerminal < 1) {
		return fmt.Errorf("sampler: FlowMatchEuler ShiftTerminal %v, want a value in [0, 1) (0 = none)", f.ShiftTerminal)
	}
	switch f.TimeShiftType {
	case "", "exponential", "linear":
	default:
		return fmt.Errorf("sampler: FlowMatchEuler TimeShiftType %q, want \"exponential\" or \"linear\"", f.TimeShiftType)
	}
	return nil
}

// mu validates the dynamic-shift settings and returns mu.
func (f *FlowMatchEuler) mu() (float64, error) {
	if f.ImageSeqLen <= 0 {
		return 0, errors.New("sampler: FlowMatchEuler with DynamicShifting needs ImageSeqLen, the image's token count (FlowImageSeqLen)")
	}
	if f.MaxImageSeqLen == f.BaseImageSeqLen {
		return 0, fmt.Errorf("sampler: FlowMatchEuler: base and max image sequence lengths are both %d", f.BaseImageSeqLen)
	}
	mu := f.Mu()
	if math.IsNaN(mu) || math.IsInf(mu, 0) || (f.TimeShiftType == "linear" && !(mu > 0)) {
		return 0, fmt.Errorf("sampler: FlowMatchEuler: dynamic shift mu = %v for ImageSeqLen %d, want a finite number (positive for the linear time shift)", mu, f.ImageSeqLen)
	}
	return mu, nil
}

// levels returns the n flow levels of a run before the final 0, in
// float64, as diffusers' set_timesteps computes them before its float32
// conversion.
func (f *FlowMatchEuler) levels(n int) ([]float64, error) {
	T := f.trainSteps()
	shift := f.shift()
	// The training levels of __init__ in float32: linspace(1, T, T)/T,
	// shifted there by the static shift unless shifting is dynamic.
	// sigma_max and sigma_min are their first and last values.
	sMax, sMin := float32(1), float32(1)/float32(T)
	if !f.DynamicShifting {
		sh, sh1 := float32(shift), float32(shift-1)
		sMax = sh * sMax / (1 + sh1*sMax)
		sMin = sh * sMin / (1 + sh1*sMin)
	}
	ts := linspace(float64(sMax)*float64(T), float64(sMin)*float64(T), n)
	s := make([]float64, n)
	for i, t := range ts {
		s[i] = t / float64(T)
	}
	if f.DynamicShifting {
		mu, err := f.mu()
		if err != nil {
			return nil, err
		}
		for i, v := range s {
			if f.TimeShiftType == "linear" {
				s[i] = mu / (mu + (1/v - 1))
			} else {
				e := math.Exp(mu)
				s[i] = e / (e + (1/v - 1))
			}
		}
	} else {
		for i, v := range s {
			s[i] = shift * v / (1 + (shift-1)*v)
		}
	}
	if f.ShiftTerminal != 0 {
		scale := (1 - s[n-1]) / (1 - f.ShiftTerminal)
		if !(scale > 0) {
			// One level, at 1: diffusers divides by zero.
			return nil, fmt.Errorf("sampler: FlowMatchEuler: ShiftTerminal %v cannot stretch levels that end at %v", f.ShiftTerminal, s[n-1])
		}
		for i, v := range s {
			s[i] = 1 - (1-v)/scale
		}
	}
	switch {
	case f.UseKarrasSigmas:
		s = karras(s[n-1], s[0], n)
	case f.UseExponentialSigmas:
		lo, hi := math.Log(s[n-1]), math.Log(s[0])
		for i, v := range linspace(hi, lo, n) {
			s[i] = math.Exp(v)
		}
	}
	return s, nil
}

// Trajectory returns the trajectory of an n-step run, n >= 1: the flow
// levels s (Sigmas, ending with 0) and the model timesteps s*T.
func (f *FlowMatchEuler) Trajectory(n int) (*Trajectory, error) {
	if err := f.checkConfig(); err != nil {
		return nil, err
	}
	if n <= 0 || n > maxFlowSteps {
		return nil, fmt.Errorf("sampler: %d inference steps, want 1..%d", n, maxFlowSteps)
	}
	s, err := f.levels(n)
	if err != nil {
		return nil, err
	}
	T := float32(f.trainSteps())
	p := &Trajectory{
		Timesteps: make([]float32, n),
		Sigmas:    make([]float32, n+1),
		Noisy:     make([]bool, n),
	}
	for i, v := range s {
		p.Sigmas[i] = float32(v)
		p.Timesteps[i] = p.Sigmas[i] * T
		p.Noisy[i] = f.StochasticSampling
	}
	if err := checkSigmas(p.Sigmas); err != nil {
		return nil, err
	}
	if p.Sigmas[0] > 1 {
		return nil, fmt.Errorf("sampler: FlowMatchEuler: first level %v, want at most 1", p.Sigmas[0])
	}
	return p, nil
}

// maxFlowSteps bounds the steps of a FlowMatchEuler run (its levels are
// not tied to the training steps).
const maxFlowSteps = 1 << 20

// StepAt performs step i of p (diffusers' FlowMatchEulerDiscreteScheduler.step)
// in float32, writing into dst the sample at p.Sigmas[i+1]:
//
//	dst = x + (s_next - s) v                   (the default)
//	dst = (1 - s_next)(x - s v) + s_next z     (StochasticSampling, z = in.Noise)
//
// in.X0 receives x - s v. dst may alias in.Sample.
func (f *FlowMatchEuler) StepAt(dst []float32, p *Trajectory, i int, in StepInput) error {
	if err := f.checkConfig(); err != nil {
		return err
	}
	if err := p.checkStep(dst, i, &in, true); err != nil {
		return err
	}
	s, next := p.Sigmas[i], p.Sigmas[i+1]
	dt := next - s
	v, x := in.ModelOutput, in.Sample
	stoch := f.StochasticSampling
	if stoch && len(in.Noise) != len(x) {
		return fmt.Errorf("sampler: FlowMatchEuler step %d draws noise and needs %d noise values, got %d", i, len(x), len(in.Noise))
	}
	hook := in.X0Hook != nil
	x0buf := in.hookBuffer(hook)
	if hook {
		for j := range x {
			x0buf[j] = x[j] - float32(s*v[j])
		}
		if err := in.X0Hook(x0buf); err != nil {
			return err
		}
	}
	for j := range x {
		x0, vj := x[j]-float32(s*v[j]), v[j]
		if hook && x0buf[j] != x0 && s > 0 {
			// The velocity that the edited x0 implies.
			x0 = x0buf[j]
			vj = (x[j] - x0) / s
		} else if x0buf != nil {
			x0buf[j] = x0
		}
		if stoch {
			dst[j] = float32((1-next)*x0) + float32(next*in.Noise[j])
		} else {
			dst[j] = x[j] + float32(dt*vj)
		}
	}
	return nil
}

// AddNoiseAt writes s_i noise + (1 - s_i) x0 into dst (diffusers'
// scale_noise, the flow forward process, at the level of step i). dst may
// alias x0 or noise.
func (f *FlowMatchEuler) AddNoiseAt(dst, x0, noise []float32, p *Trajectory, i int) error {
	if err := f.checkConfig(); err != nil {
		return err
	}
	if p == nil || i < 0 || i >= p.Len() || len(p.Sigmas) != p.Len()+1 {
		return fmt.Errorf("sampler: add noise at step %d outside the trajectory", i)
	}
	if len(x0) != len(dst) || len(noise) != len(dst) {
		return fmt.Errorf("sampler: add noise: lengths %d (dst), %d (x0), %d (noise) differ", len(dst), len(x0), len(noise))
	}
	s := p.Sigmas[i]
	for j := range dst {
		dst[j] = float32(s*noise[j]) + float32((1-s)*x0[j])
	}
	return nil
}
