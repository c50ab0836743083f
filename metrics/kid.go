package metrics

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/ugo-diffusion/ugo"
)

// KIDOptions sets how KID averages over reference subsets.
type KIDOptions struct {
	// Subsets is the number of random reference subsets (default 50).
	Subsets int
	// SubsetSize is the number of reference vectors in each subset
	// (default 1000, capped at the reference size).
	SubsetSize int
	// Seed seeds the draw of the subsets (PCG).
	Seed uint64
}

func (o KIDOptions) withDefaults(m int) KIDOptions {
	if o.Subsets <= 0 {
		o.Subsets = 50
	}
	if o.SubsetSize <= 0 {
		o.SubsetSize = 1000
	}
	o.SubsetSize = min(o.SubsetSize, m)
	return o
}

// KIDReference holds random subsets of a reference feature set and the
// within-subset kernel means that every KID against it reuses.
type KIDReference struct {
	dim     int
	subsets []*mat.Dense // SubsetSize x dim each
	within  []float64    // mean over i != j of k(y_i, y_j), per subset
}

// NewKIDReference draws opts.Subsets subsets of opts.SubsetSize vectors
// (without replacement within a subset) from the m reference vectors in
// features (m*dim values, row-major) and precomputes their kernel means.
func NewKIDReference(features []float32, dim int, opts KIDOptions) (*KIDReference, error) {
	m, err := checkFeatures(features, dim)
	if err != nil {
		return nil, err
	}
	o := opts.withDefaults(m)
	rng := rand.New(rand.NewPCG(o.Seed, 0x6b6964))
	r := &KIDReference{dim: dim}
	for s := 0; s < o.Subsets; s++ {
		perm := rng.Perm(m)[:o.SubsetSize]
		y := rows(features, dim, perm)
		k := kernel(y, y, dim)
		r.subsets = append(r.subsets, y)
		r.within = append(r.within, offDiagonalMean(k, nil))
	}
	return r, nil
}

// KIDSample is a generated feature set prepared against a KIDReference: its
// kernel matrix and its mean kernel value against every reference subset,
// so that KID under any weighting of the samples (see Bootstrap) costs
// O(n^2) without new kernel evaluations.
type KIDSample struct {
	n      int
	ref    *KIDReference
	kxx    *mat.Dense  // n x n
	crossM [][]float64 // per subset: mean over the subset of k(x_i, y_j), per sample i
}

// Prepare computes the kernel values of the n generated vectors in
// features (n*dim values) with themselves and with each reference subset.
// It needs at least two vectors.
func (r *KIDReference) Prepare(features []float32) (*KIDSample, error) {
	n, err := checkFeatures(features, r.dim)
	if err != nil {
		return nil, err
	}
	x := mat.NewDense(n, r.dim, nil)
	for i, v := range features {
		x.Set(i/r.dim, i%r.dim, float64(v))
	}
	s := &KIDSample{n: n, ref: r, kxx: kernel(x, x, r.dim)}
	for _, y := range r.subsets {
		kxy := kernel(x, y, r.dim)
		_, m := kxy.Dims()
		means := make([]float64, n)
		for i := range means {
			var sum float64
			for _, v := range kxy.RawRowView(i) {
				sum += v
			}
			means[i] = sum / float64(m)
		}
		s.crossM = append(s.crossM, means)
	}
	return s, nil
}

// Len returns the number of generated vectors.
func (s *KIDSample) Len() int { return s.n }

// KID returns the kernel inception distance: the unbiased estimate of the
// squared maximum mean discrepancy with the cubic polynomial kernel
// k(x, y) = (x.y/dim + 1)^3, averaged over the reference subsets, and the
// standard deviation of the per-subset estimates.
//
// weights, when not nil, gives each generated vector a multiplicity (a
// bootstrap resample's counts, or any non-negative weights): the
// within-sample mean is then taken over pairs of distinct vectors, each pair
// weighted by the product of their weights, so repeated draws of one vector
// never pair with themselves. nil weights every vector 1. The weights must
// be non-negative, with at least two vectors of positive weight.
func (s *KIDSample) KID(weights []float64) (mean, std float64, err error) {
	if weights != nil && len(weights) != s.n {
		return 0, 0, fmt.Errorf("metrics: %d weights for %d vectors", len(weights), s.n)
	}
	var wsum float64
	positive := 0
	for i := 0; i < s.n; i++ {
		w := 1.0
		if weights != nil {
			w = weights[i]
		}
		if w < 0 || math.IsNaN(w) || math.IsInf(w, 0) {
			return 0, 0, fmt.Errorf("metrics: weight %d is %v", i, w)
		}
		if w > 0 {
			positive++
		}
		wsum += w
	}
	if positive < 2 {
		return 0, 0, errors.New("metrics: KID needs at least two vectors of positive weight")
	}
	xx := offDiagonalMean(s.kxx, weights)
	vals := make([]float64, len(s.crossM))
	for k, means := range s.crossM {
		var cross float64
		for i, v := range means {
			w := 1.0
			if weights != nil {
				w = weights[i]
			}
			cross += w * v
		}
		vals[k] = xx + s.ref.within[k] - 2*cross/wsum
	}
	mean, std = meanStd(vals)
	return mean, std, nil
}

// KID returns the kernel inception distance between generated features x
// and reference features y (both row-major with dimension dim), averaged
// over opts.Subsets random subsets of y, and the standard deviation of the
// per-subset estimates. See KIDSample.KID.
func KID(x, y []float32, dim int, opts KIDOptions) (mean, std float64, err error) {
	ref, err := NewKIDReference(y, dim, opts)
	if err != nil {
		return 0, 0, err
	}
	s, err := ref.Prepare(x)
	if err != nil {
		return 0, 0, err
	}
	return s.KID(nil)
}

func checkFeatures(features []float32, dim int) (int, error) {
	if dim <= 0 {
		return 0, fmt.Errorf("metrics: feature dimension %d, want > 0", dim)
	}
	if len(features)%dim != 0 {
		return 0, fmt.Errorf("metrics: %d values do not divide into vectors of dimension %d", len(features), dim)
	}
	n := len(features) / dim
	if n < 2 {
		return 0, fmt.Errorf("metrics: %d feature vectors, need at least 2", n)
	}
	for i, v := range features {
		if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("metrics: feature %d of vector %d is %v: %w", i%dim, i/dim, v, ugo.ErrNonFinite)
		}
	}
	return n, nil
}

func rows(features []float32, dim int, idx []int) *mat.Dense {
	y := mat.NewDense(len(idx), dim, nil)
	for r, i := range idx {
		row := y.RawRowView(r)
		for j := range row {
			row[j] = float64(features[i*dim+j])
		}
	}
	return y
}

// kernel returns the matrix of k(a_i, b_j) = (a_i.b_j/dim + 1)^3.
func kernel(a, b *mat.Dense, dim int) *mat.Dense {
	var k mat.Dense
	k.Mul(a, b.T())
	r, c := k.Dims()
	for i := 0; i < r; i++ {
		row := k.RawRowView(i)
		for j := 0; j < c; j++ {
			v := row[j]/float64(dim) + 1
			row[j] = v * v * v
		}
	}
	return &k
}

// offDiagonalMean returns sum_{i != j} w_i w_j k_ij / sum_{i != j} w_i w_j
// (w = 1 when weights is nil) of a square matrix.
func offDiagonalMean(k *mat.Dense, weights []float64) float64 {
	n, _ := k.Dims()
	var num, den float64
	if weights == nil {
		for i := 0; i < n; i++ {
			row := k.RawRowView(i)
			for j, v := range row {
				if j != i {
					num += v
				}
			}
		}
		return num / float64(n*(n-1))
	}
	var wsum, wsq float64
	for i := 0; i < n; i++ {
		wi := weights[i]
		if wi == 0 {
			continue
		}
		wsum += wi
		wsq += wi * wi
		row := k.RawRowView(i)
		var acc float64
		for j, v := range row {
			if j != i {
				acc += weights[j] * v
			}
		}
		num += wi * acc
	}
	den = wsum*wsum - wsq
	return num / den
}

func meanStd(v []float64) (mean, std float64) {
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	if len(v) < 2 {
		return mean, 0
	}
	var ss float64
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(v)-1))
}
