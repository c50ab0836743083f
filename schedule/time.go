package schedule

import (
	"math"
	"sort"
	"strconv"
)

// locate splits a time into a training step i and a fraction f in [0, 1)
// after clamping it to [0, T-1]. ok is false for NaN.
func (s *Schedule) locate(t float64) (i int, f float64, ok bool) {
	last := len(s.abar) - 1
	switch {
	case math.IsNaN(t):
		return 0, 0, false
	case t <= 0:
		return 0, 0, true
	case t >= float64(last):
		return last, 0, true
	}
	fl := math.Floor(t)
	return int(fl), t - fl, true
}

// terminal reports whether the segment after step i ends at zero SNR, in
// which case it is interpolated linearly in abar instead of log SNR.
func (s *Schedule) terminal(i int) bool { return math.IsInf(s.lsnr[i+1], -1) }

func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

func logit(a float64) float64 { return math.Log(a) - math.Log1p(-a) }

func clamp(x, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, x)) }

// AlphaBar returns abar(t), the signal power at time t. At integer t it is
// exactly AlphasCumprod()[t]. Between integers it interpolates log SNR
// linearly and returns sigmoid(log SNR); on a segment that ends at zero SNR
// it interpolates abar linearly instead. t is clamped to [0, T-1]; NaN
// gives NaN. AlphaBar is non-increasing in t.
func (s *Schedule) AlphaBar(t float64) float64 {
	i, f, ok := s.locate(t)
	if !ok {
		return math.NaN()
	}
	a0 := float64(s.abar[i])
	if f == 0 {
		return a0
	}
	a1 := float64(s.abar[i+1])
	if s.terminal(i) {
		return clamp(a0*(1-f), a1, a0)
	}
	return clamp(sigmoid(s.lambda(i, f)), a1, a0)
}

// lambda interpolates log SNR on a segment that does not end at zero SNR.
func (s *Schedule) lambda(i int, f float64) float64 {
	l0, l1 := s.lsnr[i], s.lsnr[i+1]
	return clamp(l0+f*(l1-l0), l1, l0) // l0 + f*d is monotone in f
}

// SNR returns abar(t) / (1 - abar(t)) with the interpolation of AlphaBar.
// It is 0 where abar is 0, non-increasing in t, and NaN for NaN t.
func (s *Schedule) SNR(t float64) float64 {
	i, f, ok := s.locate(t)
	if !ok {
		return math.NaN()
	}
	if f == 0 {
		return s.snr[i]
	}
	if s.terminal(i) {
		a := float64(s.abar[i]) * (1 - f)
		return clamp(a/(1-a), s.snr[i+1], s.snr[i])
	}
	return clamp(math.Exp(s.lambda(i, f)), s.snr[i+1], s.snr[i])
}

// LogSNR returns log(SNR(t)): exactly log(abar/(1-abar)) of the float32
// abar at integer t, linear in t between integers (except on a segment that
// ends at zero SNR, where abar is linear), and -Inf where abar is 0. It is
// non-increasing in t and NaN for NaN t.
func (s *Schedule) LogSNR(t float64) float64 {
	i, f, ok := s.locate(t)
	if !ok {
		return math.NaN()
	}
	if f == 0 {
		return s.lsnr[i]
	}
	if s.terminal(i) {
		return clamp(logit(float64(s.abar[i])*(1-f)), s.lsnr[i+1], s.lsnr[i])
	}
	return s.lambda(i, f)
}

// lastAtLeast returns the last step whose log SNR is >= l, or -1.
func (s *Schedule) lastAtLeast(l float64) int {
	// lsnr is non-increasing: find the first index with lsnr < l.
	return sort.Search(len(s.lsnr), func(j int) bool { return s.lsnr[j] < l }) - 1
}

// timeAtLogSNR inverts LogSNR: it returns the largest t in [0, T-1] with
// LogSNR(t) >= l, or 0 when l exceeds LogSNR(0). l must not be NaN.
func (s *Schedule) timeAtLogSNR(l float64) float64 {
	i := s.lastAtLeast(l)
	switch {
	case i < 0:
		return 0
	case i == len(s.lsnr)-1:
		return float64(i)
	}
	l0, l1 := s.lsnr[i], s.lsnr[i+1]
	var f float64
	if math.IsInf(l1, -1) {
		f = 1 - sigmoid(l)/float64(s.abar[i])
	} else {
		f = (l0 - l) / (l0 - l1)
	}
	return float64(i) + clamp(f, 0, 1)
}

// InverseSNR returns the time t in [0, T-1] with SNR(t) = snr, inverting
// the interpolation of LogSNR, so that SNR(InverseSNR(x)) = x up to
// rounding for x in [SNR(T-1), SNR(0)]. Larger values give 0 and smaller
// ones (including 0 and negative values) give T-1. Where SNR is constant
// over an interval the latest time is returned. NaN gives NaN.
func (s *Schedule) InverseSNR(snr float64) float64 {
	if math.IsNaN(snr) {
		return math.NaN()
	}
	return s.timeAtLogSNR(logOf(snr))
}

// logOf is math.Log extended with log(x) = -Inf for x <= 0.
func logOf(x float64) float64 {
	if x <= 0 {
		return math.Inf(-1)
	}
	return math.Log(x)
}

// NearestTimestep returns the training step whose log SNR is closest to
// log(snr); ties go to the earlier step (higher SNR). snr <= 0 gives the
// first step with zero SNR, or T-1; NaN gives 0.
func (s *Schedule) NearestTimestep(snr float64) int {
	if math.IsNaN(snr) {
		return 0
	}
	return s.nearest(logOf(snr))
}

func (s *Schedule) nearest(l float64) int {
	if math.IsInf(l, -1) {
		// The first zero-SNR step, if any; else the last step.
		j := sort.Search(len(s.lsnr), func(j int) bool { return math.IsInf(s.lsnr[j], -1) })
		return min(j, len(s.lsnr)-1)
	}
	i := s.lastAtLeast(l)
	switch {
	case i < 0:
		return 0
	case i == len(s.lsnr)-1:
		return i
	}
	if s.lsnr[i]-l <= l-s.lsnr[i+1] {
		return i
	}
	return i + 1
}

// TimeMatching selects how MatchedTime maps a target SNR back to a time.
type TimeMatching int

const (
	// Continuous returns a fractional time by inverting the interpolated
	// log SNR, so that SNR(tau) = k*SNR(t) holds to float64 precision.
	Continuous TimeMatching = iota
	// Nearest returns the training step (an integer) whose log SNR is
	// closest to the target, never later than floor(t). This is what the
	// public Upsample Guidance implementations do, and suits models that
	// only accept integer timesteps.
	Nearest
)

// String returns "Continuous" or "Nearest".
func (m TimeMatching) String() string {
	switch m {
	case Continuous:
		return "Continuous"
	case Nearest:
		return "Nearest"
	}
	return "TimeMatching(" + strconv.Itoa(int(m)) + ")"
}

// MatchedTime returns the time tau at which the schedule's SNR is k times
// the SNR at time t: SNR(tau) = k*SNR(t), so that in continuous mode
// abar(tau) = k*abar(t) / (1 + (k-1)*abar(t)). This is the time at which a
// model sees the k-fold average-pooled x_t (section 1 of the design).
//
// t is clamped to [0, T-1]. tau never exceeds t; when k*SNR(t) exceeds
// SNR(0), tau is 0. k = 1 returns t exactly in both modes; k < 1, whose
// tau would lie after t, and NaN k also return t. When SNR(t) = 0 (zero
// terminal SNR) the target is 0 and tau is t. In Nearest mode tau is an
// integer <= floor(t), except for the k = 1 case. NaN t gives NaN.
func (s *Schedule) MatchedTime(t, k float64, mode TimeMatching) float64 {
	if math.IsNaN(t) {
		return math.NaN()
	}
	t = clamp(t, 0, float64(len(s.abar)-1))
	if !(k > 1) {
		return t
	}
	target := s.LogSNR(t) + math.Log(k)
	if math.IsNaN(target) { // -Inf + Inf
		return t
	}
	if mode == Nearest {
		return math.Min(float64(s.nearest(target)), math.Floor(t))
	}
	return math.Min(s.timeAtLogSNR(target), t)
}

// PowerFactor returns P_t = abar(t) + (1 - abar(t))/k, the variance of the
// k-fold average-pooled x_t per element; dividing the pooled sample by
// sqrt(P_t) restores unit variance. For k >= 1 it lies in [abar(t), 1]
// (strictly above abar(t) unless (1-abar)/k underflows against abar). k must
// be positive: k <= 0 or NaN gives NaN; 0 < k < 1 gives values above 1.
func (s *Schedule) PowerFactor(t, k float64) float64 {
	if !(k > 0) {
		return math.NaN()
	}
	a := s.AlphaBar(t)
	p := a + (1-a)/k
	if k >= 1 {
		p = math.Min(p, 1)
	}
	return p
}
