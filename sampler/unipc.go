package sampler

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/ugo-diffusion/ugo/schedule"
)

// UniPCSolverType selects the B(h) function of UniPC, with diffusers'
// solver_type names.
type UniPCSolverType string

// The B(h) variants of UniPC (Zhao et al., arXiv 2302.04867, section 3.3):
// BH1 is B(h) = h, BH2 (the default) is B(h) = e^h - 1.
const (
	BH1 UniPCSolverType = "bh1"
	BH2 UniPCSolverType = "bh2"
)

// UniPC is the unified predictor-corrector multistep solver of Zhao et al.
// (arXiv 2302.04867) in its data-prediction form, with the semantics of
// diffusers' UniPCMultistepScheduler (predict_x0 true): each step first
// corrects the sample it receives with the new model output (UniC, using
// the previous step's predictions), then predicts the next sample (UniP)
// with up to SolverOrder previous predictions of the clean sample. Orders
// 1 to 3 and both B(h) variants are supported.
//
// The timesteps and sigmas are those of DPMSolverMultistep (linspace by
// default, with n+1 points of which the last is dropped), or Karras sigmas
// whose final value under FinalSigmaMin is the smallest Karras sigma, as
// in diffusers. The history (the predictions of the last SolverOrder
// steps and the corrected sample of the previous step) lives in the run's
// state (Trajectory.State), so that a resumed run restarts it with a
// lower-order step.
//
// A UniPC holds no per-run state.
type UniPC struct {
	// Schedule is the training noise schedule. Required. A zero terminal
	// alphas_cumprod (zero SNR) is replaced by 2^-24, as diffusers does.
	Schedule *schedule.Schedule
	// SolverOrder is 1, 2 or 3 (0 means 2).
	SolverOrder int
	// SolverType is the B(h) variant ("" = BH2).
	SolverType UniPCSolverType
	// PredictionType says how to read the model output ("" = schedule.PredictEpsilon).
	PredictionType schedule.PredictionType
	// Threshold applies dynamic thresholding to the predicted x0 as in
	// DDIM.
	Threshold
	// LowerOrderFinal lowers the order of the last steps so that it never
	// exceeds the number of steps left (diffusers' default true;
	// NewUniPC sets it).
	LowerOrderFinal bool
	// DisableCorrector lists the indices of steps after which the
	// corrector is skipped: the corrector of step i runs unless i-1 is
	// listed.
	DisableCorrector []int
	// UseKarrasSigmas spaces the sigmas as Karras et al. propose, between
	// KarrasSigmaMin and KarrasSigmaMax (0 means the smallest and largest
	// training sigma).
	UseKarrasSigmas                bool
	KarrasSigmaMin, KarrasSigmaMax float64
	// FinalSigmas is the level of the final sample ("" = FinalZero).
	FinalSigmas FinalSigmas
	// Spacing chooses the timesteps ("" = schedule.Linspace), and
	// StepsOffset is added to them under Leading spacing.
	Spacing     schedule.Spacing
	StepsOffset int
}

// NewUniPC returns a UniPC configured from a diffusers scheduler
// configuration with the keys UniPCMultistepScheduler reads: the schedule,
// prediction_type, thresholding (with its ratio and maximum),
// solver_order, solver_type, lower_order_final, disable_corrector,
// use_karras_sigmas, sigma_min, sigma_max, final_sigmas_type,
// timestep_spacing and steps_offset, with the class's defaults (order 2,
// bh2, lower_order_final on, final sigma zero, linspace spacing) for the
// keys cfg does not give. As in diffusers, the DPM-Solver solver types
// midpoint, heun and logrho mean bh2. predict_x0 false (the noise-prediction
// form), solver_p, use_exponential_sigmas, use_beta_sigmas,
// use_flow_sigmas, dynamic shifting and shift_terminal are refused with a
// *schedule.FieldError, and so are the two combinations with a zero final
// sigma for which diffusers' own step returns NaN or infinities: bh1, and
// lower_order_final false with an order above 1.
func NewUniPC(cfg schedule.Config) (*UniPC, error) {
	if err := refuseSigmoid(&cfg, "UniPCMultistepScheduler"); err != nil {
		return nil, err
	}
	const class = "UniPCMultistepScheduler"
	if err := refuseUnsupported(&cfg, class, "use_exponential_sigmas", "use_beta_sigmas", "use_flow_sigmas",
		"use_dynamic_shifting", "time_shift_type", "solver_p", "shift_terminal"); err != nil {
		return nil, err
	}
	if cfg.Given("predict_x0") && !cfg.PredictX0 {
		return nil, fieldError("predict_x0", "false (the noise-prediction form of UniPC) is not supported")
	}
	st := BH2
	if cfg.Given("solver_type") && cfg.SolverType == string(BH1) {
		st = BH1
	}
	order, lowerFinal := multistepConfig(&cfg)
	if f := finalSigmasFor(&cfg); f == FinalZero {
		if st == BH1 {
			return nil, fieldError("solver_type", `"bh1" with final_sigmas_type "zero" gives NaN in diffusers (B(h) = h is infinite at sigma 0); use bh2 or final_sigmas_type "sigma_min"`)
		}
		if order > 1 && !lowerFinal {
			return nil, fieldError("lower_order_final", `false with final_sigmas_type "zero" and solver_order > 1 diverges in diffusers; use final_sigmas_type "sigma_min"`)
		}
	}
	s, err := cfg.Schedule()
	if err != nil {
		return nil, err
	}
	u := &UniPC{
		Schedule:         s,
		SolverOrder:      order,
		SolverType:       st,
		PredictionType:   cfg.PredictionType,
		Threshold:        thresholdFromConfig(&cfg),
		LowerOrderFinal:  lowerFinal,
		DisableCorrector: slices.Clone(cfg.DisableCorrector),
		UseKarrasSigmas:  cfg.UseKarrasSigmas,
		KarrasSigmaMin:   optSigma(cfg.SigmaMin),
		KarrasSigmaMax:   optSigma(cfg.SigmaMax),
		FinalSigmas:      finalSigmasFor(&cfg),
		Spacing:          spacingFor(&cfg, schedule.Linspace),
		StepsOffset:      cfg.StepsOffset,
	}
	if _, err := u.check(); err != nil {
		return nil, err
	}
	return u, nil
}

func (u *UniPC) check() (clipping, error) {
	if u == nil || u.Schedule == nil || u.Schedule.Len() == 0 {
		return clipping{}, errors.New("sampler: UniPC needs a non-empty Schedule")
	}
	if u.SolverOrder < 0 || u.SolverOrder > 3 {
		return clipping{}, fmt.Errorf("sampler: UniPC order %d not supported, want 1, 2 or 3", u.SolverOrder)
	}
	switch u.SolverType {
	case "", BH1, BH2:
	default:
		return clipping{}, fmt.Errorf("sampler: UniPC solver type %q not supported, want %q or %q", string(u.SolverType), BH1, BH2)
	}
	if err := checkKConfig(u.PredictionType, u.Spacing, u.StepsOffset, u.FinalSigmas); err != nil {
		return clipping{}, err
	}
	if u.FinalSigmas.orZero() == FinalZero {
		// At sigma = 0, lambda is infinite: diffusers' bh1 multiplies
		// B(h) = -Inf by a zero correction (NaN), and a multistep update
		// divides by r_k = 0 (Inf). Refuse what diffusers cannot sample.
		if u.SolverType == BH1 {
			return clipping{}, errors.New("sampler: UniPC bh1 with a zero final sigma gives NaN (as in diffusers); use bh2 or FinalSigmaMin")
		}
		if u.order() > 1 && !u.LowerOrderFinal {
			return clipping{}, errors.New("sampler: UniPC of order > 1 without LowerOrderFinal diverges at a zero final sigma (as in diffusers); set LowerOrderFinal or FinalSigmaMin")
		}
	}
	if !(u.KarrasSigmaMin >= 0 && u.KarrasSigmaMax >= 0) {
		return clipping{}, fmt.Errorf("sampler: UniPC Karras sigma bounds %v, %v, want numbers >= 0", u.KarrasSigmaMin, u.KarrasSigmaMax)
	}
	return u.Threshold.resolve()
}

func (u *UniPC) order() int {
	if u.SolverOrder == 0 {
		return 2
	}
	return u.SolverOrder
}

// Trajectory returns the trajectory of an n-step run: the timesteps and sigmas
// described on the type, unit initial noise, no input scaling, no step
// noise, and SolverOrder+2 state buffers.
func (u *UniPC) Trajectory(n int) (*Trajectory, error) {
	if _, err := u.check(); err != nil {
		return nil, err
	}
	T := u.Schedule.Len()
	if n <= 0 || n > T {
		return nil, fmt.Errorf("sampler: %d inference steps, want 1..%d (the training steps)", n, T)
	}
	st, err := newSigmaTable(u.Schedule)
	if err != nil {
		return nil, err
	}
	p := &Trajectory{
		Timesteps: make([]float32, n),
		Sigmas:    make([]float32, n+1),
		Noisy:     make([]bool, n),
		State:     u.order() + 2,
	}
	if u.UseKarrasSigmas {
		lo, hi := float64(st.sig[0]), float64(st.sig[T-1])
		if u.KarrasSigmaMin != 0 {
			lo = u.KarrasSigmaMin
		}
		if u.KarrasSigmaMax != 0 {
			hi = u.KarrasSigmaMax
		}
		sig := karras(lo, hi, n)
		for i, v := range sig {
			p.Sigmas[i] = float32(v)
			p.Timesteps[i] = float32(math.RoundToEven(st.sigmaToT(v)))
		}
		if u.FinalSigmas == FinalSigmaMin {
			p.Sigmas[n] = float32(sig[n-1])
		}
	} else {
		ts, err := dpmTimesteps(T, T, n, u.Spacing, u.StepsOffset)
		if err != nil {
			return nil, err
		}
		for i, t := range ts {
			p.Timesteps[i] = float32(t)
			p.Sigmas[i] = st.sig[t]
		}
		if u.FinalSigmas == FinalSigmaMin {
			p.Sigmas[n] = st.sig[0]
		}
	}
	if err := checkSigmas(p.Sigmas); err != nil {
		return nil, err
	}
	return p, nil
}

// thisOrder is the order of the predictor of step i of an n-step run after
// prior steps of the run (diffusers' this_order).
func (u *UniPC) thisOrder(i, n, prior int) int {
	o := u.order()
	if u.LowerOrderFinal {
		o = min(o, n-i)
	}
	return min(o, min(prior, u.order())+1)
}

// unipcCoefs holds the coefficients of one UniP or UniC update:
//
//	x_new = cx*x - c0*m0 - cb*(sum_k rho[k]*(m_k - m0)/r[k] [+ rho[order-1]*(m_t - m0)])
type unipcCoefs struct {
	cx, c0, cb float32
	r          [2]float32 // r_k of the k < order-1 differences
	rho        [3]float32
	order      int
}

// coefs computes the coefficients of an update of the given order from
// sigma s0 to sigma t, with the earlier sigmas prev[k] (k < order-1) of
// the differences, as diffusers' multistep_uni_p_bh_update (corrector
// false) and multistep_uni_c_bh_update (corrector true) in float32.
func (u *UniPC) coefs(sigT, sigS0 float32, prev []float32, order int, corrector bool) unipcCoefs {
	alphaT, sigmaT, lambdaT := alphaSigma(sigT)
	_, sigmaS0, lambdaS0 := alphaSigma(sigS0)
	h := lambdaT - lambdaS0
	var c unipcCoefs
	c.order = order
	var rks [3]float32
	for k := 0; k < order-1; k++ {
		_, _, lambdaSi := alphaSigma(prev[k])
		rks[k] = (lambdaSi - lambdaS0) / h
		c.r[k] = rks[k]
	}
	rks[order-1] = 1
	hh := -h
	hPhi1 := float32(math.Expm1(float64(hh)))
	hPhiK := hPhi1/hh - 1
	fact := 1
	bh := hh
	if u.SolverType != BH1 {
		bh = float32(math.Expm1(float64(hh)))
	}
	var R [3][3]float32
	var b [3]float32
	for i := 1; i <= order; i++ {
		for k := range order {
			R[i-1][k] = pow32(rks[k], i-1)
		}
		b[i-1] = (hPhiK * float32(fact)) / bh
		fact *= i + 1
		hPhiK = hPhiK/hh - float32(1/float64(fact))
	}
	switch {
	case corrector && order == 1:
		c.rho[0] = 0.5
	case corrector:
		c.rho = solve32(R, b, order)
	case order == 2:
		c.rho[0] = 0.5
	case order == 3:
		c.rho = solve32(R, b, 2)
	}
	c.cx = sigmaT / sigmaS0
	c.c0 = alphaT * hPhi1
	c.cb = alphaT * bh
	return c
}

// pow32 is torch.pow(x, e) for a small integer exponent in float32.
func pow32(x float32, e int) float32 {
	switch e {
	case 0:
		return 1
	case 1:
		return x
	case 2:
		return x * x
	}
	return float32(math.Pow(float64(x), float64(e)))
}

// solve32 solves the leading n x n system of a x = b (n <= 3) in float32
// by Gaussian elimination with partial pivoting, as LAPACK's sgesv.
func solve32(a [3][3]float32, b [3]float32, n int) [3]float32 {
	for j := range n {
		p := j
		for i := j + 1; i < n; i++ {
			if abs32(a[i][j]) > abs32(a[p][j]) {
				p = i
			}
		}
		a[j], a[p] = a[p], a[j]
		b[j], b[p] = b[p], b[j]
		if a[j][j] == 0 {
			continue
		}
		inv := 1 / a[j][j]
		for i := j + 1; i < n; i++ {
			l := a[i][j] * inv
			for k := j + 1; k < n; k++ {
				a[i][k] -= float32(l * a[j][k])
			}
			b[i] -= float32(l * b[j])
		}
	}
	var x [3]float32
	for i := n - 1; i >= 0; i-- {
		v := b[i]
		for k := i + 1; k < n; k++ {
			v -= float32(a[i][k] * x[k])
		}
		x[i] = v / a[i][i]
	}
	return x
}

func abs32(v float32) float32 { return float32(math.Abs(float64(v))) }

// StepAt performs step i of p (diffusers' UniPCMultistepScheduler.step) in
// float32: it converts the model output to the clean-sample prediction m_i
// (thresholded when configured; written into in.X0), corrects the sample
// with it unless this is the run's first step or i-1 is in
// DisableCorrector, and predicts the sample at p.Sigmas[i+1] into dst,
// which may alias in.Sample.
func (u *UniPC) StepAt(dst []float32, p *Trajectory, i int, in StepInput) error {
	c, err := u.check()
	if err != nil {
		return err
	}
	if err := p.checkStep(dst, i, &in, true); err != nil {
		return err
	}
	order := u.order()
	if p.State < order+2 {
		return fmt.Errorf("sampler: UniPC trajectory has %d state buffers, want %d", p.State, order+2)
	}
	n := p.Len()
	prior := in.StateSteps
	hist := in.State[:order] // m_{i-1}, m_{i-2}, ...
	last := in.State[order]  // the corrected sample of step i-1
	cur := in.State[order+1] // m_i

	sig := p.Sigmas[i]
	if !(sig > 0) {
		return fmt.Errorf("sampler: UniPC step %d at sigma %v, want sigma > 0", i, sig)
	}
	alphaS, sigmaS, _ := alphaSigma(sig)
	pred := predictionOrDefault(u.PredictionType)
	m, s := in.ModelOutput, in.Sample
	for j := range s {
		switch pred {
		case schedule.PredictV:
			cur[j] = float32(alphaS*s[j]) - float32(sigmaS*m[j])
		case schedule.PredictSample:
			cur[j] = m[j]
		default:
			cur[j] = (s[j] - float32(sigmaS*m[j])) / alphaS
		}
	}
	if err := in.callX0(cur); err != nil {
		return err
	}
	if c.threshold {
		c.thresholdAll(cur, in.batch(), in.Scratch)
	}

	correct := prior > 0 && !slices.Contains(u.DisableCorrector, i-1)
	var cc unipcCoefs
	if correct {
		co := u.thisOrder(i-1, n, prior-1)
		var prev [2]float32
		for k := 1; k < co; k++ {
			prev[k-1] = p.Sigmas[i-(k+1)]
		}
		cc = u.coefs(p.Sigmas[i], p.Sigmas[i-1], prev[:], co, true)
	}
	po := u.thisOrder(i, n, prior)
	var prevP [2]float32
	for k := 1; k < po; k++ {
		prevP[k-1] = p.Sigmas[i-k]
	}
	pc := u.coefs(p.Sigmas[i+1], p.Sigmas[i], prevP[:], po, false)

	for j := range s {
		x := s[j]
		mi := cur[j]
		if correct {
			m0 := hist[0][j]
			xt := float32(cc.cx*last[j]) - float32(cc.c0*m0)
			var res float32
			for k := 0; k < cc.order-1; k++ {
				res += float32(cc.rho[k] * ((hist[k+1][j] - m0) / cc.r[k]))
			}
			res += float32(cc.rho[cc.order-1] * (mi - m0))
			x = xt - float32(cc.cb*res)
		}
		last[j] = x
		v := float32(pc.cx*x) - float32(pc.c0*mi)
		var res float32
		for k := 0; k < pc.order-1; k++ {
			res += float32(pc.rho[k] * ((hist[k][j] - mi) / pc.r[k]))
		}
		dst[j] = v - float32(pc.cb*res)
	}
	if in.X0 != nil {
		copy(in.X0, cur)
	}
	// m_i joins the history, newest first; the oldest buffer becomes the
	// next step's scratch.
	oldest := hist[order-1]
	copy(hist[1:], hist[:order-1])
	hist[0] = cur
	in.State[order+1] = oldest
	return nil
}

// AddNoiseAt writes alpha_t x0 + sigma_t noise into dst, with alpha_t and
// sigma_t the variance-preserving coefficients of sigma_i (diffusers'
// add_noise). dst may alias x0 or noise.
func (u *UniPC) AddNoiseAt(dst, x0, noise []float32, p *Trajectory, i int) error {
	if _, err := u.check(); err != nil {
		return err
	}
	return addNoiseSigma(dst, x0, noise, p, i)
}
