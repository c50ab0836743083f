package metrics

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/stat/distuv"
)

// Interval is a statistic's value on the full sample and a two-sided
// confidence interval around it.
type Interval struct {
	Estimate float64
	Lo, Hi   float64
}

// BootstrapOptions sets the resampling of Bootstrap.
type BootstrapOptions struct {
	// Resamples is the number of bootstrap resamples (default 1000).
	Resamples int
	// Level is the confidence level, in (0, 1) (default 0.95).
	Level float64
	// Seed seeds the resampling (PCG).
	Seed uint64
	// Method is the kind of interval (default Percentile).
	Method IntervalMethod
}

// IntervalMethod selects how Bootstrap turns the resampled values into an
// interval. With E the full-sample estimate, q_lo and q_hi the (1-Level)/2
// and (1+Level)/2 quantiles of the resampled values and se their standard
// deviation:
type IntervalMethod int

const (
	// Percentile is [q_lo, q_hi].
	Percentile IntervalMethod = iota
	// Basic (reverse percentile) is [2E - q_hi, 2E - q_lo]: it subtracts
	// the resamples' shift from E, so it can lie wholly below E when that
	// shift is large against their spread.
	Basic
	// Normal is E -+ z se, z the standard normal quantile of (1+Level)/2.
	// For a statistic whose bias depends on the number of distinct items,
	// such as the Frechet distance (a resample repeats items, which raises
	// its value), it keeps the interval around E, where the percentile
	// interval inherits the shift.
	Normal
)

// Bootstrap returns a bootstrap confidence interval (Efron) of a statistic
// of n items: it evaluates stat on the full sample (every weight 1) for the
// estimate, draws opts.Resamples resamples of the n items with replacement,
// evaluates stat on each, and returns the (1-Level)/2 and (1+Level)/2
// quantiles q_lo, q_hi of the values (linear interpolation between order
// statistics, numpy's default) as the percentile interval, or the interval
// of another opts.Method.
//
// stat receives a sample as the multiplicity of each item (float64 counts
// summing to n), the form FitGaussianWeighted and KIDSample.KID take; the
// slice is reused between calls. An error from stat stops the resampling
// and is returned.
func Bootstrap(n int, opts BootstrapOptions, stat func(weights []float64) (float64, error)) (Interval, error) {
	if n < 1 {
		return Interval{}, fmt.Errorf("metrics: bootstrap of %d items", n)
	}
	if stat == nil {
		return Interval{}, errors.New("metrics: nil bootstrap statistic")
	}
	if opts.Resamples <= 0 {
		opts.Resamples = 1000
	}
	if opts.Level == 0 {
		opts.Level = 0.95
	}
	if !(opts.Level > 0 && opts.Level < 1) {
		return Interval{}, fmt.Errorf("metrics: confidence level %v, want in (0, 1)", opts.Level)
	}
	rng := rand.New(rand.NewPCG(opts.Seed, 0x626f6f74))
	w := make([]float64, n)
	for i := range w {
		w[i] = 1
	}
	est, err := stat(w)
	if err != nil {
		return Interval{}, err
	}
	if math.IsNaN(est) {
		return Interval{}, errors.New("metrics: bootstrap statistic is NaN on the full sample")
	}
	vals := make([]float64, opts.Resamples)
	for r := range vals {
		clear(w)
		for i := 0; i < n; i++ {
			w[rng.IntN(n)]++
		}
		v, err := stat(w)
		if err != nil {
			return Interval{}, err
		}
		if math.IsNaN(v) {
			return Interval{}, fmt.Errorf("metrics: bootstrap statistic is NaN on resample %d", r)
		}
		vals[r] = v
	}
	slices.Sort(vals)
	lo, hi := quantile(vals, (1-opts.Level)/2), quantile(vals, (1+opts.Level)/2)
	switch opts.Method {
	case Percentile:
	case Basic:
		lo, hi = 2*est-hi, 2*est-lo
	case Normal:
		_, sd := meanStd(vals)
		z := distuv.UnitNormal.Quantile((1 + opts.Level) / 2)
		lo, hi = est-z*sd, est+z*sd
	default:
		return Interval{}, fmt.Errorf("metrics: unknown interval method %d", opts.Method)
	}
	return Interval{Estimate: est, Lo: lo, Hi: hi}, nil
}

// quantile returns the q-quantile of sorted values, interpolating linearly
// between order statistics at position q*(len-1).
func quantile(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	i := int(math.Floor(pos))
	if i >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	f := pos - float64(i)
	return sorted[i] + f*(sorted[i+1]-sorted[i])
}
