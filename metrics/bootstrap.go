package metrics

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Interval is a two-sided confidence interval.
type Interval struct {
	Lo, Hi float64
}

// BootstrapOptions sets the resampling of Bootstrap.
type BootstrapOptions struct {
	// Resamples is the number of bootstrap resamples (default 1000).
	Resamples int
	// Level is the confidence level, in (0, 1) (default 0.95).
	Level float64
	// Seed seeds the resampling (PCG).
	Seed uint64
}

// Bootstrap returns the percentile bootstrap interval (Efron) of a
// statistic of n items: it draws opts.Resamples resamples of the n items
// with replacement, evaluates stat on each, and returns the (1-Level)/2 and
// (1+Level)/2 quantiles of the values (linear interpolation between order
// statistics, numpy's default).
//
// stat receives a resample as the multiplicity of each item (float64 counts
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
	return Interval{Lo: quantile(vals, (1-opts.Level)/2), Hi: quantile(vals, (1+opts.Level)/2)}, nil
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
