package sampler

import (
	"errors"
	"fmt"
	"math"

	"github.com/ugo-diffusion/ugo/schedule"
)

// DPMAlgorithm selects the DPM-Solver variant, with diffusers'
// algorithm_type names.
type DPMAlgorithm string

// The supported algorithm types. The empty DPMAlgorithm means DPMSolverPP.
const (
	// DPMSolverPP is DPM-Solver++ (Lu et al., arXiv 2211.01095), the
	// deterministic solver of the data-prediction ODE.
	DPMSolverPP DPMAlgorithm = "dpmsolver++"
	// SDEDPMSolverPP is its stochastic counterpart ("DPM++ 2M SDE"),
	// which draws noise at every step.
	SDEDPMSolverPP DPMAlgorithm = "sde-dpmsolver++"
)

// DPMSolverType selects the second-order update, with diffusers'
// solver_type names. The empty DPMSolverType means Midpoint.
type DPMSolverType string

// The second-order update rules of diffusers.
const (
	Midpoint DPMSolverType = "midpoint"
	Heun     DPMSolverType = "heun"
)

// DPMSolverMultistep is the multistep DPM-Solver++ of Lu et al. (arXiv
// 2211.01095, "DPM++ 2M") with the semantics of diffusers'
// DPMSolverMultistepScheduler for solver orders 1 and 2. The sample is the
// variance-preserving x_t, which the model sees as it is; with alpha_t =
// 1/sqrt(sigma^2+1), sigma_t = sigma alpha_t and lambda = log(alpha_t /
// sigma_t), a first-order step from s to t is
//
//	x_t = (sigma_t/sigma_s) x_s - alpha_t (exp(-h) - 1) x0^_s,   h = lambda_t - lambda_s
//
// and a second-order step adds the correction from the previous step's
// prediction x0^ (the solver's history, StepInput.PrevX0), with r =
// h_prev/h and D1 = (x0^_s - x0^_prev)/r: - alpha_t (exp(-h) - 1) D1 / 2
// (Midpoint) or + alpha_t ((exp(-h) - 1)/h + 1) D1 (Heun). The first step
// of a run, and the last when FinalSigmas is zero or EulerAtFinal or
// LowerOrderFinal with fewer than 15 steps, are first order.
//
// Timesteps follow diffusers' own rules for this scheduler, which differ
// from DDIM's: linspace (the default) rounds n+1 points of [0, T-1] and
// drops the last, leading uses the stride T/(n+1) and adds StepsOffset,
// trailing is DDIM's. With UseKarrasSigmas the sigmas are Karras' spacing
// (rho = 7) between the smallest and largest training sigma, and the
// model is called at the rounded timesteps whose log sigma they
// interpolate.
//
// Fields left at their zero value take diffusers' defaults where noted,
// except LowerOrderFinal (NewDPMSolverMultistep sets it, as diffusers
// does). A DPMSolverMultistep holds no per-run state: the history travels
// in the caller's buffers, so one value may drive concurrent runs.
type DPMSolverMultistep struct {
	// Schedule is the training noise schedule. Required. A zero terminal
	// alphas_cumprod (zero SNR) is replaced by 2^-24, as diffusers does.
	Schedule *schedule.Schedule
	// SolverOrder is 1, 2 or 3 (0 means 2). Order 3 keeps the prediction
	// of two steps back in the run's state (Trajectory.State); a resumed run
	// restarts that part of the history, so it takes a second-order step
	// where the uninterrupted run takes a third-order one.
	SolverOrder int
	// Algorithm is DPMSolverPP ("") or SDEDPMSolverPP.
	Algorithm DPMAlgorithm
	// SolverType is the second-order rule ("" = Midpoint).
	SolverType DPMSolverType
	// PredictionType says how to read the model output ("" = schedule.PredictEpsilon).
	PredictionType schedule.PredictionType
	// Threshold applies dynamic thresholding to the predicted x0 as in
	// DDIM.
	Threshold
	// LowerOrderFinal makes the last step first order in runs of fewer
	// than 15 steps (diffusers' default true), and EulerAtFinal in every
	// run.
	LowerOrderFinal bool
	EulerAtFinal    bool
	// UseKarrasSigmas spaces the sigmas as Karras et al. propose.
	UseKarrasSigmas bool
	// KarrasTruncate calls the model at the integer part of the
	// fractional timestep of each Karras sigma instead of the nearest
	// integer. diffusers does so for the squaredcos_cap_v2 beta schedule
	// (it skips the rounding and the int64 conversion truncates), and
	// NewDPMSolverMultistep sets it for that schedule.
	KarrasTruncate bool
	// LambdaMinClipped clips the timesteps to those whose lambda =
	// log(alpha_t/sigma_t) is at least this value (diffusers'
	// lambda_min_clipped, useful for the cosine schedule, whose last
	// steps have a very low SNR). 0 and -Inf clip nothing; the default of
	// diffusers is -Inf. It applies to the spaced timesteps, not to
	// Karras sigmas.
	LambdaMinClipped float64
	// FinalSigmas is the level of the final sample ("" = FinalZero,
	// diffusers' default; its tests use FinalSigmaMin).
	FinalSigmas FinalSigmas
	// Spacing chooses the timesteps ("" = schedule.Linspace), and
	// StepsOffset is added to them under Leading spacing.
	Spacing     schedule.Spacing
	StepsOffset int
}

// NewDPMSolverMultistep returns a DPM-Solver++ configured from a diffusers
// scheduler configuration with the keys DPMSolverMultistepScheduler reads:
// the schedule, prediction_type, thresholding (with its ratio and maximum),
// solver_order, algorithm_type, solver_type, lower_order_final,
// euler_at_final, use_karras_sigmas, final_sigmas_type, lambda_min_clipped,
// timestep_spacing and steps_offset, with the class's defaults (order 2,
// dpmsolver++, midpoint, lower_order_final on, final sigma zero, linspace
// spacing) for the keys cfg does not give; see NewEuler about the defaults.
// As in diffusers, the UniPC solver types bh1, bh2 and logrho mean
// midpoint. The algorithm types dpmsolver and sde-dpmsolver (noise
// prediction), the learned variance types, use_exponential_sigmas,
// use_beta_sigmas, use_lu_lambdas, use_flow_sigmas and dynamic shifting are
// refused with a *schedule.FieldError.
func NewDPMSolverMultistep(cfg schedule.Config) (*DPMSolverMultistep, error) {
	if err := refuseSigmoid(&cfg, "DPMSolverMultistepScheduler"); err != nil {
		return nil, err
	}
	const class = "DPMSolverMultistepScheduler"
	if err := refuseUnsupported(&cfg, class, "use_exponential_sigmas", "use_beta_sigmas", "use_lu_lambdas",
		"use_flow_sigmas", "use_dynamic_shifting", "time_shift_type"); err != nil {
		return nil, err
	}
	if err := refuseLearnedVariance(&cfg, class); err != nil {
		return nil, err
	}
	alg := DPMSolverPP
	// A DEIS configuration's "deis" means dpmsolver++ here, as in diffusers.
	if cfg.Given("algorithm_type") && cfg.AlgorithmType != "" && cfg.AlgorithmType != "deis" {
		alg = DPMAlgorithm(cfg.AlgorithmType)
		if alg != DPMSolverPP && alg != SDEDPMSolverPP {
			return nil, fieldError("algorithm_type", "%q (noise-prediction DPM-Solver) is not supported; use dpmsolver++ or sde-dpmsolver++", cfg.AlgorithmType)
		}
	}
	st := Midpoint
	if cfg.Given("solver_type") && cfg.SolverType == string(Heun) {
		st = Heun
	}
	order, lowerFinal := multistepConfig(&cfg)
	s, err := cfg.Schedule()
	if err != nil {
		return nil, err
	}
	d := &DPMSolverMultistep{
		Schedule:         s,
		SolverOrder:      order,
		Algorithm:        alg,
		SolverType:       st,
		PredictionType:   cfg.PredictionType,
		Threshold:        thresholdFromConfig(&cfg),
		LowerOrderFinal:  lowerFinal,
		EulerAtFinal:     cfg.Given("euler_at_final") && cfg.EulerAtFinal,
		UseKarrasSigmas:  cfg.UseKarrasSigmas,
		KarrasTruncate:   cfg.BetaSchedule == schedule.BetaSquaredCos,
		FinalSigmas:      finalSigmasFor(&cfg),
		LambdaMinClipped: lambdaClip(&cfg),
		Spacing:          spacingFor(&cfg, schedule.Linspace),
		StepsOffset:      cfg.StepsOffset,
	}
	if _, err := d.check(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *DPMSolverMultistep) check() (clipping, error) {
	if d == nil || d.Schedule == nil || d.Schedule.Len() == 0 {
		return clipping{}, errors.New("sampler: DPMSolverMultistep needs a non-empty Schedule")
	}
	if d.SolverOrder < 0 || d.SolverOrder > 3 {
		return clipping{}, fmt.Errorf("sampler: DPM-Solver order %d not supported, want 1, 2 or 3", d.SolverOrder)
	}
	if math.IsNaN(d.LambdaMinClipped) {
		return clipping{}, errors.New("sampler: DPM-Solver lambda_min_clipped is NaN")
	}
	switch d.Algorithm {
	case "", DPMSolverPP, SDEDPMSolverPP:
	default:
		return clipping{}, fmt.Errorf("sampler: DPM-Solver algorithm %q not supported, want %q or %q", string(d.Algorithm), DPMSolverPP, SDEDPMSolverPP)
	}
	switch d.SolverType {
	case "", Midpoint, Heun:
	default:
		return clipping{}, fmt.Errorf("sampler: DPM-Solver solver type %q not supported, want %q or %q", string(d.SolverType), Midpoint, Heun)
	}
	if err := checkKConfig(d.PredictionType, d.Spacing, d.StepsOffset, d.FinalSigmas); err != nil {
		return clipping{}, err
	}
	return d.Threshold.resolve()
}

func (d *DPMSolverMultistep) order() int {
	if d.SolverOrder == 0 {
		return 2
	}
	return d.SolverOrder
}

func (d *DPMSolverMultistep) sde() bool { return d.Algorithm == SDEDPMSolverPP }

// dpmTimesteps returns the timesteps of diffusers' DPMSolverMultistepScheduler
// (without Karras sigmas) for timesteps below last (T when nothing is
// clipped by lambda_min_clipped).
func dpmTimesteps(T, last, n int, sp schedule.Spacing, offset int) ([]int, error) {
	ts := make([]int, n)
	switch sp {
	case "", schedule.Linspace:
		// np.linspace(0, last-1, n+1).round()[::-1][:-1]
		v := linspace(0, float64(last-1), n+1)
		for i := range n {
			ts[i] = int(math.RoundToEven(v[n-i]))
		}
	case schedule.Leading:
		// (np.arange(0, n+1) * (last // (n+1))).round()[::-1][:-1] + offset
		ratio := last / (n + 1)
		for i := range n {
			ts[i] = (n-i)*ratio + offset
		}
	case schedule.Trailing:
		if last == T {
			return schedule.Timesteps(T, n, sp, 0)
		}
		// np.arange(last, 0, -T/n).round() - 1: fewer than n values when
		// last < T.
		ratio := float64(T) / float64(n)
		if k := int(math.Ceil(float64(last) / ratio)); k != n {
			return nil, fmt.Errorf("sampler: lambda_min_clipped leaves %d trailing timesteps for %d steps", k, n)
		}
		delta := (float64(last) - ratio) - float64(last)
		for i := range n {
			v := float64(last) + float64(i)*delta
			if i == 1 {
				v = float64(last) - ratio
			}
			ts[i] = int(math.RoundToEven(v)) - 1
		}
	default:
		return nil, fmt.Errorf("sampler: unknown timestep spacing %q", string(sp))
	}
	for i, t := range ts {
		if t < 0 || t >= T {
			return nil, fmt.Errorf("sampler: timestep %d outside the schedule [0, %d); check steps_offset", t, T)
		}
		if i > 0 && t >= ts[i-1] {
			return nil, fmt.Errorf("sampler: %d steps of %d-step schedule with %s spacing repeat timestep %d; use fewer steps", n, T, sp, t)
		}
	}
	return ts, nil
}

// Trajectory returns the trajectory of an n-step run: the timesteps and sigmas
// described on the type, unit initial noise, no input scaling, noise at
// every step for SDEDPMSolverPP, and Multistep for order 2.
func (d *DPMSolverMultistep) Trajectory(n int) (*Trajectory, error) {
	if _, err := d.check(); err != nil {
		return nil, err
	}
	T := d.Schedule.Len()
	if n <= 0 || n > T {
		return nil, fmt.Errorf("sampler: %d inference steps, want 1..%d (the training steps)", n, T)
	}
	st, err := newSigmaTable(d.Schedule)
	if err != nil {
		return nil, err
	}
	var ts []int
	if !d.UseKarrasSigmas { // Karras sigmas bring their own timesteps
		if ts, err = dpmTimesteps(T, d.lastTimestep(), n, d.Spacing, d.StepsOffset); err != nil {
			return nil, err
		}
	}
	p := &Trajectory{
		Timesteps: make([]float32, n),
		Sigmas:    make([]float32, n+1),
		Noisy:     make([]bool, n),
		Multistep: d.order() >= 2,
	}
	if d.order() == 3 {
		p.State = 1 // the prediction two steps back
	}
	if d.UseKarrasSigmas {
		sig := karras(float64(st.sig[0]), float64(st.sig[T-1]), n)
		for i, v := range sig {
			p.Sigmas[i] = float32(v)
			t := st.sigmaToT(v)
			if d.KarrasTruncate {
				t = math.Trunc(t)
			} else {
				t = math.RoundToEven(t)
			}
			p.Timesteps[i] = float32(t)
		}
	} else {
		for i, t := range ts {
			p.Timesteps[i] = float32(t)
			p.Sigmas[i] = st.sig[t]
		}
	}
	if d.FinalSigmas == FinalSigmaMin {
		p.Sigmas[n] = st.sig[0]
	}
	for i := range n {
		p.Noisy[i] = d.sde()
	}
	if err := checkSigmas(p.Sigmas); err != nil {
		return nil, err
	}
	return p, nil
}

// lastTimestep returns diffusers' last_timestep: T less the number of
// training steps whose lambda = log(sqrt(abar)) - log(sqrt(1-abar)), in
// float32, is below LambdaMinClipped.
func (d *DPMSolverMultistep) lastTimestep() int {
	ac := d.Schedule.AlphasCumprod()
	T := len(ac)
	if d.LambdaMinClipped == 0 || math.IsInf(d.LambdaMinClipped, -1) {
		return T
	}
	clip := float32(d.LambdaMinClipped)
	clipped := 0
	for i, a := range ac {
		if i == T-1 && a == 0 {
			a = 1.0 / (1 << 24)
		}
		at, st := sqrt32(a), sqrt32(1-a)
		lambda := float32(math.Log(float64(at))) - float32(math.Log(float64(st)))
		if lambda < clip {
			clipped++
		}
	}
	return T - clipped
}

// alphaSigma is diffusers' _sigma_to_alpha_sigma_t and the log-SNR
// lambda = log(alpha_t) - log(sigma_t), in float32.
func alphaSigma(sigma float32) (alpha, sig, lambda float32) {
	alpha = 1 / sqrt32(float32(sigma*sigma)+1)
	sig = sigma * alpha
	lambda = float32(math.Log(float64(alpha))) - float32(math.Log(float64(sig)))
	return alpha, sig, lambda
}

// multistepConfig reads the keys both multistep solvers share, with
// diffusers' defaults: solver_order (2; 0 also means 2) and
// lower_order_final (true).
func multistepConfig(cfg *schedule.Config) (order int, lowerFinal bool) {
	order, lowerFinal = 2, true
	if cfg.Given("solver_order") && cfg.SolverOrder != 0 {
		order = cfg.SolverOrder
	}
	if cfg.Given("lower_order_final") {
		lowerFinal = cfg.LowerOrderFinal
	}
	return order, lowerFinal
}

// addNoiseSigma writes alpha_t x0 + sigma_t noise into dst, with alpha_t
// and sigma_t the variance-preserving coefficients of the trajectory's
// sigma at step i (diffusers' add_noise for the sigma-based solvers).
func addNoiseSigma(dst, x0, noise []float32, p *Trajectory, i int) error {
	if p == nil || i < 0 || i >= p.Len() || len(p.Sigmas) != p.Len()+1 {
		return fmt.Errorf("sampler: add noise at step %d outside the trajectory", i)
	}
	if len(x0) != len(dst) || len(noise) != len(dst) {
		return fmt.Errorf("sampler: add noise: lengths %d (dst), %d (x0), %d (noise) differ", len(dst), len(x0), len(noise))
	}
	a, s, _ := alphaSigma(p.Sigmas[i])
	for j := range dst {
		dst[j] = float32(a*x0[j]) + float32(s*noise[j])
	}
	return nil
}

func exp32(x float32) float32 { return float32(math.Exp(float64(x))) }

// StepAt performs step i of p (diffusers' DPMSolverMultistepScheduler.step)
// in float32: it converts the model output to x0^ (thresholded when
// configured), writes it into in.X0, and takes a first-order step, or a
// second-order one when in.PrevX0 holds the previous step's x0^ and the
// step is not forced to first order. dst may alias in.Sample.
func (d *DPMSolverMultistep) StepAt(dst []float32, p *Trajectory, i int, in StepInput) error {
	c, err := d.check()
	if err != nil {
		return err
	}
	if err := p.checkStep(dst, i, &in, true); err != nil {
		return err
	}
	if d.sde() && len(in.Noise) != len(in.Sample) {
		return fmt.Errorf("sampler: SDE DPM-Solver step %d needs %d noise values, got %d", i, len(in.Sample), len(in.Noise))
	}
	n := p.Len()
	lowerFinal := i == n-1 && (d.EulerAtFinal || (d.LowerOrderFinal && n < 15) || d.FinalSigmas.orZero() == FinalZero)
	second := d.order() >= 2 && in.PrevX0 != nil && !lowerFinal
	// Third order needs the prediction of two steps back, which the
	// previous step of this run kept in the state, and is not taken on
	// the second-to-last step of a short run with LowerOrderFinal.
	lowerSecond := i == n-2 && d.LowerOrderFinal && n < 15
	third := second && d.order() == 3 && in.StateSteps >= 2 && !lowerSecond
	if second && i == 0 {
		return errors.New("sampler: DPM-Solver history (PrevX0) given at the first step of the trajectory")
	}

	sigS, sigT := p.Sigmas[i], p.Sigmas[i+1]
	if !(sigS > 0) || sigT < 0 {
		return fmt.Errorf("sampler: DPM-Solver step %d from sigma %v to %v, want sigma > 0 and next >= 0", i, sigS, sigT)
	}
	alphaS, sigmaS, lambdaS := alphaSigma(sigS)
	alphaT, sigmaT, lambdaT := alphaSigma(sigT)
	h := lambdaT - lambdaS

	// Coefficients, in diffusers' float32 order of operations.
	var cx, c0, c1, cz float32
	if d.sde() {
		e2 := exp32(-2 * h)
		cx = (sigmaT / sigmaS) * exp32(-h)
		c0 = alphaT * (1 - e2)
		cz = sigmaT * sqrt32(1-e2)
		if d.SolverType == Heun {
			c1 = alphaT * ((1-e2)/(-2*h) + 1)
		} else {
			c1 = 0.5 * c0
		}
	} else {
		em := exp32(-h) - 1
		cx = sigmaT / sigmaS
		c0 = -(alphaT * em)
		if d.SolverType == Heun {
			c1 = alphaT * (em/h + 1)
		} else {
			c1 = -(0.5 * (alphaT * em))
		}
	}
	var invR, invR0, invR1, rr, rs, c2 float32
	c1Second := c1
	if third {
		sigP, sigQ := p.Sigmas[i-1], p.Sigmas[i-2]
		if !(sigQ >= sigP && sigP >= sigS) {
			return fmt.Errorf("sampler: DPM-Solver step %d: sigmas %v, %v, %v do not decrease", i, sigQ, sigP, sigS)
		}
		_, _, lambdaP := alphaSigma(sigP)
		_, _, lambdaQ := alphaSigma(sigQ)
		r0 := (lambdaS - lambdaP) / h
		r1 := (lambdaP - lambdaQ) / h
		invR0, invR1 = 1/r0, 1/r1
		rr = r0 / (r0 + r1)
		rs = 1 / (r0 + r1)
		if d.sde() {
			e2 := exp32(-2 * h)
			h2 := 2 * h
			c1 = alphaT * ((1-e2)/(-2*h) + 1)
			c2 = alphaT * ((1-e2-h2)/(h2*h2) - 0.5)
		} else {
			em := exp32(-h) - 1
			c1 = alphaT * (em/h + 1)
			c2 = -(alphaT * ((em+h)/(h*h) - 0.5))
		}
		// A repeated sigma leaves the differences undefined: fall back.
		third = r0 > 0 && r1 > 0
		if !third {
			c1 = c1Second
		}
	}
	if second && !third {
		sigP := p.Sigmas[i-1]
		if !(sigP >= sigS) {
			return fmt.Errorf("sampler: DPM-Solver step %d: previous sigma %v below %v", i, sigP, sigS)
		}
		_, _, lambdaP := alphaSigma(sigP)
		r := (lambdaS - lambdaP) / h
		invR = 1 / r
		// No previous interval (a repeated sigma) leaves D1 undefined:
		// take the first-order step.
		second = r > 0
	}
	if h == 0 {
		// A step to the same noise level (the last one of Karras sigmas
		// ending on sigma_min) leaves the sample as it is, as diffusers'
		// formulas do for the midpoint rule.
		cx, c0, c1, c2, cz = 1, 0, 0, 0, 0
	}

	s := in.Sample
	conv := x0Map{pred: predictionOrDefault(d.PredictionType), a: alphaS, s: sigmaS}
	x0buf, err := c.thresholdX0(in.X0, conv, in)
	if err != nil {
		return err
	}
	sde := d.sde()
	for j := range s {
		m0 := c.x0At(x0buf, conv, in, j)
		// x_t = cx*x + c0*D0 [+ c1*D1] [+ cz*z], summed left to right as
		// diffusers does (its minus signs are folded into c0 and c1).
		v := float32(cx*s[j]) + float32(c0*m0)
		switch {
		case third:
			m1, m2 := in.PrevX0[j], in.State[0][j]
			d10 := float32(invR0 * (m0 - m1))
			d11 := float32(invR1 * (m1 - m2))
			dd := d10 - d11
			d1 := d10 + float32(rr*dd)
			d2 := float32(rs * dd)
			v += float32(c1 * d1)
			v += float32(c2 * d2)
		case second:
			d1 := float32(invR * (m0 - in.PrevX0[j]))
			v += float32(c1 * d1)
		}
		if sde {
			v += float32(cz * in.Noise[j])
		}
		dst[j] = v
	}
	if p.State > 0 && in.PrevX0 != nil {
		// The next step's prediction two steps back.
		copy(in.State[0], in.PrevX0)
	}
	return nil
}

func (f FinalSigmas) orZero() FinalSigmas {
	if f == "" {
		return FinalZero
	}
	return f
}

// AddNoiseAt writes alpha_t x0 + sigma_t noise into dst, with alpha_t and
// sigma_t the variance-preserving coefficients of sigma_i (diffusers'
// add_noise). dst may alias x0 or noise.
func (d *DPMSolverMultistep) AddNoiseAt(dst, x0, noise []float32, p *Trajectory, i int) error {
	if _, err := d.check(); err != nil {
		return err
	}
	return addNoiseSigma(dst, x0, noise, p, i)
}
