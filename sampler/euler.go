package sampler

import (
	"errors"
	"fmt"
	"math"

	"github.com/ugo-diffusion/ugo/schedule"
)

// Euler is the Euler sampler of Karras et al. (arXiv 2206.00364,
// algorithm 2) in k-diffusion's form, with the semantics of diffusers'
// EulerDiscreteScheduler: the sample is x0 + sigma eps, with sigma running
// down a list derived from the training schedule; the model sees x /
// sqrt(sigma^2+1) (the variance-preserving x_t) at the timestep of sigma,
// and each step follows the probability-flow ODE dx/dsigma = (x - x0^)/sigma
// for one Euler step.
//
// The sigma list: the timesteps of Spacing ("" = schedule.Linspace, the
// default of diffusers' Euler, fractional: np.linspace(0, T-1, n) in
// float32), with sigma interpolated linearly between training steps
// (interpolation_type "linear"); or, with UseKarrasSigmas, n levels spaced
// as Karras et al. propose (rho = 7) between the first and last of those,
// each called at the fractional timestep whose log sigma it interpolates
// (diffusers' _sigma_to_t). Then FinalSigmas. A run from noise starts at
// InitNoiseSigma: the largest sigma for linspace and trailing spacing,
// sqrt(sigma_max^2+1) for leading, as diffusers.
//
// SChurn > 0 turns on the stochastic "churn" of Karras' algorithm 2 as
// diffusers applies it: at steps with STMin <= sigma <= STMax the sample
// gets fresh noise up to sigma_hat = sigma (1 + gamma), gamma =
// min(SChurn/n, sqrt(2)-1), after the model call, and the step runs from
// sigma_hat.
//
// Fields left at their zero value take diffusers' defaults where noted.
// An Euler holds no per-run state.
type Euler struct {
	// Schedule is the training noise schedule. Required. A zero terminal
	// alphas_cumprod (zero SNR) is replaced by 2^-24, as diffusers does.
	Schedule *schedule.Schedule
	// PredictionType says how to read the model output ("" = schedule.PredictEpsilon).
	PredictionType schedule.PredictionType
	// Spacing chooses the timesteps ("" = schedule.Linspace), and
	// StepsOffset is added to them under Leading spacing.
	Spacing     schedule.Spacing
	StepsOffset int
	// UseKarrasSigmas replaces the sigmas with Karras' spacing, between
	// KarrasSigmaMin and KarrasSigmaMax (diffusers' sigma_min and
	// sigma_max; 0 means the smallest and largest sigma of the list).
	UseKarrasSigmas                bool
	KarrasSigmaMin, KarrasSigmaMax float64
	// FinalSigmas is the level of the final sample ("" = FinalZero).
	FinalSigmas FinalSigmas
	// SChurn, STMin, STMax (0 means +Inf) and SNoise (0 means 1) are the
	// churn parameters s_churn, s_tmin, s_tmax and s_noise of diffusers'
	// step. SChurn = 0, the default, makes the sampler deterministic.
	SChurn, STMin, STMax, SNoise float64
}

// NewEuler returns an Euler configured from a diffusers scheduler
// configuration with the keys EulerDiscreteScheduler reads: the schedule,
// prediction_type, timestep_spacing, steps_offset, use_karras_sigmas,
// sigma_min, sigma_max and final_sigmas_type, with the class's defaults
// for the keys cfg does not give (schedule.Config.Given): linspace
// spacing for a parsed file without timestep_spacing. A Config built in
// Go, such as schedule.DefaultConfig (leading spacing, the DDIM default),
// is used as is. use_exponential_sigmas, use_beta_sigmas, the log_linear
// interpolation_type and the continuous timestep_type of v-prediction are
// refused with a *schedule.FieldError; the churn parameters are not
// configuration keys in diffusers (they are step arguments) and start at
// 0.
func NewEuler(cfg schedule.Config) (*Euler, error) {
	if err := refuseSigmoid(&cfg, "EulerDiscreteScheduler"); err != nil {
		return nil, err
	}
	if err := refuseUnsupported(&cfg, "EulerDiscreteScheduler", "use_exponential_sigmas", "use_beta_sigmas"); err != nil {
		return nil, err
	}
	if cfg.InterpolationType == "log_linear" {
		return nil, fieldError("interpolation_type", `"log_linear" is not supported by this module's EulerDiscreteScheduler`)
	}
	if cfg.TimestepType == "continuous" && cfg.PredictionType == schedule.PredictV {
		return nil, fieldError("timestep_type", `"continuous" with v_prediction is not supported by this module's EulerDiscreteScheduler`)
	}
	s, err := cfg.Schedule()
	if err != nil {
		return nil, err
	}
	e := &Euler{
		Schedule:        s,
		PredictionType:  cfg.PredictionType,
		Spacing:         spacingFor(&cfg, schedule.Linspace),
		StepsOffset:     cfg.StepsOffset,
		UseKarrasSigmas: cfg.UseKarrasSigmas,
		KarrasSigmaMin:  optSigma(cfg.SigmaMin),
		KarrasSigmaMax:  optSigma(cfg.SigmaMax),
		FinalSigmas:     finalSigmasFor(&cfg),
	}
	if err := e.check(); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *Euler) check() error {
	if e == nil || e.Schedule == nil || e.Schedule.Len() == 0 {
		return errors.New("sampler: Euler needs a non-empty Schedule")
	}
	if err := checkKConfig(e.PredictionType, e.Spacing, e.StepsOffset, e.FinalSigmas); err != nil {
		return err
	}
	for _, v := range []struct {
		name string
		v    float64
	}{{"s_churn", e.SChurn}, {"s_tmin", e.STMin}, {"s_noise", e.SNoise}} {
		if !(v.v >= 0 && v.v <= math.MaxFloat32) {
			return fmt.Errorf("sampler: Euler %s %v, want a finite number >= 0", v.name, v.v)
		}
	}
	if !(e.STMax >= 0) {
		return fmt.Errorf("sampler: Euler s_tmax %v, want a number >= 0", e.STMax)
	}
	return nil
}

func checkKConfig(pred schedule.PredictionType, sp schedule.Spacing, offset int, final FinalSigmas) error {
	if err := validatePrediction(pred); err != nil {
		return err
	}
	if sp != "" && !sp.Valid() {
		return fmt.Errorf("sampler: unknown timestep spacing %q", string(sp))
	}
	if offset < 0 {
		return fmt.Errorf("sampler: steps offset %d, want >= 0", offset)
	}
	return final.validate()
}

// gamma returns the churn factor of a step at sigma in an n-step run, in
// float64 as diffusers computes it; the comparisons with s_tmin and s_tmax
// are float32 ones, as torch's.
func (e *Euler) gamma(sigma float32, n int) float64 {
	tmax := float32(math.Inf(1))
	if e.STMax != 0 {
		tmax = float32(e.STMax)
	}
	if e.SChurn <= 0 || sigma < float32(e.STMin) || sigma > tmax {
		return 0
	}
	return min(e.SChurn/float64(n), math.Sqrt2-1)
}

// Trajectory returns the trajectory of an n-step run, 1 <= n <= T: the sigmas, the
// timesteps at which the model sees them, the input norms sqrt(sigma^2+1),
// and noise at the steps where churn is on.
func (e *Euler) Trajectory(n int) (*Trajectory, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	p, err := kTrajectory(e.Schedule, n, e.Spacing, e.StepsOffset, e.UseKarrasSigmas, e.FinalSigmas, e.KarrasSigmaMin, e.KarrasSigmaMax)
	if err != nil {
		return nil, err
	}
	for i := range n {
		p.Noisy[i] = e.gamma(p.Sigmas[i], n) > 0
	}
	return p, nil
}

// kTrajectory computes the sigma list of diffusers' Euler schedulers; kMin and
// kMax, when not 0, bound the Karras sigmas.
func kTrajectory(s *schedule.Schedule, n int, sp schedule.Spacing, offset int, useKarras bool, final FinalSigmas, kMin, kMax float64) (*Trajectory, error) {
	T := s.Len()
	if n <= 0 || n > T {
		return nil, fmt.Errorf("sampler: %d inference steps, want 1..%d (the training steps)", n, T)
	}
	st, err := newSigmaTable(s)
	if err != nil {
		return nil, err
	}
	if sp == "" {
		sp = schedule.Linspace
	}
	ts := make([]float64, n)
	if sp == schedule.Linspace {
		// np.linspace(0, T-1, n, dtype=np.float32)[::-1]
		for i, v := range linspace(0, float64(T-1), n) {
			ts[n-1-i] = float64(float32(v))
		}
	} else {
		its, err := schedule.Timesteps(T, n, sp, offset)
		if err != nil {
			return nil, err
		}
		for i, t := range its {
			ts[i] = float64(t)
		}
	}
	sig := make([]float64, n)
	for i, t := range ts {
		sig[i] = st.interp(t)
	}
	if useKarras {
		lo, hi := sig[n-1], sig[0]
		if kMin != 0 {
			lo = kMin
		}
		if kMax != 0 {
			hi = kMax
		}
		sig = karras(lo, hi, n)
		for i, v := range sig {
			ts[i] = st.sigmaToT(v)
		}
	}
	p := &Trajectory{
		Timesteps: make([]float32, n),
		Sigmas:    make([]float32, n+1),
		InputNorm: make([]float32, n),
		Noisy:     make([]bool, n),
	}
	var maxSigma float32
	for i := range n {
		p.Timesteps[i] = float32(ts[i])
		p.Sigmas[i] = float32(sig[i])
		p.InputNorm[i] = sqrt32(float32(p.Sigmas[i]*p.Sigmas[i]) + 1)
		maxSigma = max(maxSigma, p.Sigmas[i])
	}
	if final == FinalSigmaMin {
		p.Sigmas[n] = st.sig[0]
	}
	maxSigma = max(maxSigma, p.Sigmas[n])
	p.InitNoiseSigma = maxSigma
	if sp == schedule.Leading {
		p.InitNoiseSigma = sqrt32(float32(maxSigma*maxSigma) + 1)
	}
	if err := checkSigmas(p.Sigmas); err != nil {
		return nil, err
	}
	return p, nil
}

// checkSigmas verifies that a sigma list starts positive and finite and
// does not increase.
func checkSigmas(sig []float32) error {
	if !(sig[0] > 0 && finite32(sig[0])) {
		return fmt.Errorf("sampler: first sigma %v, want a positive finite number", sig[0])
	}
	for i := 1; i < len(sig); i++ {
		if !(sig[i] <= sig[i-1] && sig[i] >= 0) {
			return fmt.Errorf("sampler: sigma %d is %v after %v, want a non-increasing list >= 0", i, sig[i], sig[i-1])
		}
	}
	return nil
}

// kX0 returns k-diffusion's denoised x0^ for one element from the
// model output m at sample x, where sigma is the level the model saw,
// sigmaHat the (churned) level of x and c = sigma^2+1 precomputed.
func kX0(pred schedule.PredictionType, m, x, sigmaHat, cOut, c float32) float32 {
	switch pred {
	case schedule.PredictV:
		// model_output * (-sigma / (sigma**2 + 1) ** 0.5) + sample / (sigma**2 + 1)
		return float32(m*cOut) + x/c
	case schedule.PredictSample:
		return m
	default:
		return x - float32(sigmaHat*m)
	}
}

// StepAt performs step i of p (diffusers' EulerDiscreteScheduler.step) in
// float32, writing into dst the sample at p.Sigmas[i+1]:
//
//	x0^ = x - sigma_hat eps       (epsilon; v and sample read as diffusers)
//	dst = x + (x - x0^)/sigma_hat * (sigma_next - sigma_hat)
//
// with sigma_hat = sigma (1+gamma) and x first moved to sigma_hat with
// in.Noise when churn is on at this step. dst may alias in.Sample.
func (e *Euler) StepAt(dst []float32, p *Trajectory, i int, in StepInput) error {
	if err := e.check(); err != nil {
		return err
	}
	if err := p.checkStep(dst, i, &in, true); err != nil {
		return err
	}
	n := p.Len()
	sigma, next := p.Sigmas[i], p.Sigmas[i+1]
	gamma := e.gamma(sigma, n)
	if gamma > 0 && len(in.Noise) != len(in.Sample) {
		return fmt.Errorf("sampler: Euler step %d churns and needs %d noise values, got %d", i, len(in.Sample), len(in.Noise))
	}
	sigmaHat := sigma * float32(gamma+1)
	if !(sigmaHat > 0) {
		return fmt.Errorf("sampler: Euler step %d at sigma %v, want a positive sigma", i, sigma)
	}
	churn := sqrt32(max(float32(sigmaHat*sigmaHat)-float32(sigma*sigma), 0))
	sNoise := float32(e.SNoise)
	if sNoise == 0 {
		sNoise = 1
	}
	c := float32(sigma*sigma) + 1
	cOut := -sigma / sqrt32(c)
	dt := next - sigmaHat
	pred := predictionOrDefault(e.PredictionType)
	m, s := in.ModelOutput, in.Sample
	// churned returns element j of x moved to sigma_hat.
	churned := func(j int) float32 {
		x := s[j]
		if gamma > 0 {
			x += float32(float32(in.Noise[j]*sNoise) * churn)
		}
		return x
	}
	x0buf := in.hookBuffer(in.X0Hook != nil)
	if in.X0Hook != nil {
		for j := range s {
			x0buf[j] = kX0(pred, m[j], churned(j), sigmaHat, cOut, c)
		}
		if err := in.X0Hook(x0buf); err != nil {
			return err
		}
	}
	for j := range s {
		x := churned(j)
		var x0 float32
		if in.X0Hook != nil {
			x0 = x0buf[j]
		} else {
			x0 = kX0(pred, m[j], x, sigmaHat, cOut, c)
			if x0buf != nil {
				x0buf[j] = x0
			}
		}
		d := (x - x0) / sigmaHat
		dst[j] = x + float32(d*dt)
	}
	return nil
}

// AddNoiseAt writes x0 + sigma_i noise into dst (diffusers' add_noise for
// the Euler samplers). dst may alias x0 or noise.
func (e *Euler) AddNoiseAt(dst, x0, noise []float32, p *Trajectory, i int) error {
	if err := e.check(); err != nil {
		return err
	}
	return kAddNoise(dst, x0, noise, p, i)
}

func kAddNoise(dst, x0, noise []float32, p *Trajectory, i int) error {
	if p == nil || i < 0 || i >= p.Len() || len(p.Sigmas) != p.Len()+1 {
		return fmt.Errorf("sampler: add noise at step %d outside the trajectory", i)
	}
	if len(x0) != len(dst) || len(noise) != len(dst) {
		return fmt.Errorf("sampler: add noise: lengths %d (dst), %d (x0), %d (noise) differ", len(dst), len(x0), len(noise))
	}
	sigma := p.Sigmas[i]
	for j := range dst {
		dst[j] = x0[j] + float32(noise[j]*sigma)
	}
	return nil
}
