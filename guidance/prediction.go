package guidance

import (
	"fmt"
	"math"

	"github.com/ugo-diffusion/ugo/schedule"
)

// affine relates a model output m at a sample x to the noise and the clean
// sample it implies, element-wise:
//
//	eps = epsM*m + epsX*x        x0 = x0M*m + x0X*x
//
// Every parameterisation of a diffusion model (noise, velocity, clean
// sample; rectified flow's velocity) is such a pair of affine maps at a
// fixed time, which is what lets Upsample Guidance, defined on the noise,
// be applied to the model output directly.
type affine struct {
	epsM, epsX float64
	x0M, x0X   float64
}

// parameterization is what Upsample Guidance needs to know about a model's
// output: its affine relation to eps and x0 at each time, and the time and
// input scale of the low-resolution call. The variance-preserving
// prediction types implement it with abar_t from the schedule (tau with
// SNR(tau) = k SNR(t), scale 1/sqrt(P_t)); a rectified-flow model (x_s =
// (1-s) x0 + s eps, v = eps - x0) with eps = x + (1-s) v and x0 = x - s v,
// tau = s/(s + sqrt(k)(1-s)) and scale (1-tau)/(1-s).
type parameterization interface {
	// at returns the relation at time t, and false where the output
	// does not determine eps (an output in eps units is then passed
	// through unguided).
	at(t float64) (affine, bool)
	// matched returns the time tau of the low-resolution call for t.
	matched(t float64) float64
	// scale returns the factor applied to D(x_t) to form the
	// low-resolution input.
	scale(t float64) float64
}

// vp is a variance-preserving model, x_t = sqrt(abar_t) x0 +
// sqrt(1-abar_t) eps, that predicts pred, guided for k pooled elements
// with the given time matching.
type vp struct {
	s    *schedule.Schedule
	pred schedule.PredictionType
	k    float64
	mode schedule.TimeMatching
}

func (p vp) matched(t float64) float64 { return p.s.MatchedTime(t, p.k, p.mode) }

func (p vp) scale(t float64) float64 { return 1 / math.Sqrt(p.s.PowerFactor(t, p.k)) }

func (p vp) at(t float64) (affine, bool) {
	ab := p.s.AlphaBar(t)
	a, s := math.Sqrt(ab), math.Sqrt(1-ab)
	var r affine
	switch p.pred {
	case schedule.PredictV: // v = a eps - s x0
		r = affine{epsM: a, epsX: s, x0M: -s, x0X: a}
	case schedule.PredictSample: // m = x0
		r = affine{epsM: -a / s, epsX: 1 / s, x0M: 1, x0X: 0}
	default: // m = eps
		r = affine{epsM: 1, epsX: 0, x0M: -s / a, x0X: 1 / a}
	}
	ok := r.epsM != 0 && !math.IsInf(r.epsM, 0) && !math.IsNaN(r.epsM) && !math.IsInf(r.epsX, 0)
	return r, ok
}

// flow is a rectified-flow model, x_s = (1-s) x0 + s eps, called at the
// timestep t = T s and predicting the velocity v = eps - x0, guided for k
// pooled elements.
//
// Pooling gives D(x_s) = (1-s) D(x0) + (s/sqrt(k)) eps' with eps' standard
// normal, so c D(x_s) = (1-tau) D(x0) + tau eps' for
//
//	tau = s / (s + sqrt(k)(1-s)),     c = (1-tau)/(1-s) = sqrt(k) / (s + sqrt(k)(1-s))
//
// (the same SNR matching as the variance-preserving case: ((1-tau)/tau)^2 =
// k ((1-s)/s)^2). c tends to sqrt(k) as s tends to 1, where tau = 1.
type flow struct {
	T    float64
	k    float64
	mode schedule.TimeMatching
	// exact: the low-resolution call runs on c D(x) at the matched tau
	// (both adjustments on; continuous matching, or s = 1), so the
	// guidance term has the closed form of term, valid at s = 1 too.
	exact bool
}

// level returns the flow level s = t/T of a timestep, clamped to [0, 1].
func (p flow) level(t float64) float64 { return min(max(t/p.T, 0), 1) }

// denom is s + sqrt(k)(1-s).
func (p flow) denom(s float64) float64 { return s + math.Sqrt(p.k)*(1-s) }

func (p flow) at(t float64) (affine, bool) {
	s := p.level(t)
	r := affine{epsM: 1 - s, epsX: 1, x0M: -s, x0X: 1}
	return r, r.epsM != 0
}

func (p flow) matched(t float64) float64 {
	s := p.level(t)
	tau := p.T * s / p.denom(s)
	if p.mode == schedule.Nearest {
		tau = math.Round(tau)
	}
	return min(max(tau, 0), p.T)
}

func (p flow) scale(t float64) float64 { return math.Sqrt(p.k) / p.denom(p.level(t)) }

// term returns the coefficients (a, b) of the guidance term of a flow
// model in velocity units, v~ = v + w U(a v_low + b D(x) - D(v)), at time t
// with the low-resolution call at tau on scale*D(x); false where they are
// not defined. With eps = x + (1-s) v at both resolutions, the eps-space
// term divided by 1-s is
//
//	((1-tau)/(sqrt(k)(1-s))) v_low + ((scale/sqrt(k) - 1)/(1-s)) D(x) - D(v)
//
// which, at the matched tau and c (exact), is (v_low + (1-sqrt(k)) D(x)) /
// (s + sqrt(k)(1-s)) - D(v): finite at s = 1, the first level of a flow
// run, where the eps-space form is 0/0.
func (p flow) term(t, tau, scale float64) (a, b float64, ok bool) {
	s := p.level(t)
	rk := math.Sqrt(p.k)
	if p.exact && (p.mode == schedule.Continuous || s == 1) { // Nearest: tau = T exactly at s = 1
		d := p.denom(s)
		return 1 / d, (1 - rk) / d, true
	}
	if s >= 1 {
		return 0, 0, false
	}
	return (1 - p.level(tau)) / (rk * (1 - s)), (scale/rk - 1) / (1 - s), true
}

// checkPrediction validates UpsampleOptions.Prediction.
func checkPrediction(p schedule.PredictionType) error {
	switch p {
	case "", schedule.PredictEpsilon, schedule.PredictV, schedule.PredictSample, schedule.PredictFlow:
		return nil
	}
	return fmt.Errorf("guidance: Upsample: unknown Prediction %q, want %q, %q, %q or %q",
		p, schedule.PredictEpsilon, schedule.PredictV, schedule.PredictSample, schedule.PredictFlow)
}
