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
// output: its affine relation to eps and x0 at each time. The
// variance-preserving prediction types implement it with abar_t from the
// schedule; a rectified-flow model (x_s = (1-s) x0 + s eps, v = eps - x0)
// would implement it with eps = x + (1-s) v and x0 = x - s v, together with
// its own matched time tau = s/(s + sqrt(k)(1-s)) and input scale
// (1-tau)/(1-s).
type parameterization interface {
	// at returns the relation at time t, and false where the output
	// does not determine eps (an output in eps units is then passed
	// through unguided).
	at(t float64) (affine, bool)
}

// vp is a variance-preserving model, x_t = sqrt(abar_t) x0 +
// sqrt(1-abar_t) eps, that predicts pred.
type vp struct {
	s    *schedule.Schedule
	pred schedule.PredictionType
}

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

// checkPrediction validates UpsampleOptions.Prediction.
func checkPrediction(p schedule.PredictionType) error {
	switch p {
	case "", schedule.PredictEpsilon, schedule.PredictV, schedule.PredictSample:
		return nil
	}
	return fmt.Errorf("guidance: Upsample: unknown Prediction %q, want %q, %q or %q",
		p, schedule.PredictEpsilon, schedule.PredictV, schedule.PredictSample)
}
