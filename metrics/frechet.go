package metrics

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/ugo-diffusion/ugo"
)

// Gaussian is the mean and covariance of a set of feature vectors.
type Gaussian struct {
	// Mean has one entry per feature dimension.
	Mean []float64
	// Cov is the Dim x Dim sample covariance (normalised by n-1).
	Cov *mat.SymDense
	// N is the number of vectors the Gaussian was fitted to.
	N int
}

// Dim returns the feature dimension.
func (g *Gaussian) Dim() int { return len(g.Mean) }

// check reports a Gaussian that no distance can use: nil, without
// dimensions, a covariance missing or of another size, non-finite values.
func (g *Gaussian) check(name string) error {
	if g == nil {
		return errors.New("metrics: nil Gaussian")
	}
	d := len(g.Mean)
	if d == 0 || g.Cov == nil || g.Cov.SymmetricDim() != d {
		cd := 0
		if g.Cov != nil {
			cd = g.Cov.SymmetricDim()
		}
		return fmt.Errorf("metrics: %s Gaussian has %d means and a %dx%d covariance, want d >= 1 of each", name, d, cd, cd)
	}
	for i, m := range g.Mean {
		if math.IsNaN(m) || math.IsInf(m, 0) {
			return fmt.Errorf("metrics: %s Gaussian: mean %d is %v: %w", name, i, m, ugo.ErrNonFinite)
		}
		for j := 0; j <= i; j++ {
			if v := g.Cov.At(i, j); math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("metrics: %s Gaussian: covariance (%d, %d) is %v: %w", name, i, j, v, ugo.ErrNonFinite)
			}
		}
	}
	return nil
}

// FitGaussian fits a Gaussian to n feature vectors of dimension dim stored
// row-major in features (len(features) == n*dim). It needs at least two
// vectors and finite values.
func FitGaussian(features []float32, dim int) (*Gaussian, error) {
	if dim <= 0 {
		return nil, fmt.Errorf("metrics: feature dimension %d, want > 0", dim)
	}
	if len(features)%dim != 0 {
		return nil, fmt.Errorf("metrics: %d values do not divide into vectors of dimension %d", len(features), dim)
	}
	// The covariance and the matrices a distance derives from it are
	// dim x dim float64s: a few vectors of a huge dimension would need
	// gigabytes.
	if err := ugo.CheckMemory(fmt.Sprintf("metrics: a %dx%d covariance", dim, dim), ugo.TensorBytes(8, dim, dim)); err != nil {
		return nil, err
	}
	n := len(features) / dim
	if n < 2 {
		return nil, fmt.Errorf("metrics: %d feature vectors, need at least 2", n)
	}
	mean := make([]float64, dim)
	for i, v := range features {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("metrics: feature %d of vector %d is %v: %w", i%dim, i/dim, v, ugo.ErrNonFinite)
		}
		mean[i%dim] += f
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	cov := mat.NewSymDense(dim, nil)
	row := make([]float64, dim)
	centered := mat.NewVecDense(dim, row)
	for r := 0; r < n; r++ {
		for j := 0; j < dim; j++ {
			row[j] = float64(features[r*dim+j]) - mean[j]
		}
		cov.SymRankOne(cov, 1, centered)
	}
	cov.ScaleSym(1/float64(n-1), cov)
	return &Gaussian{Mean: mean, Cov: cov, N: n}, nil
}

// FitGaussianWeighted fits a Gaussian to the n feature vectors in features
// (n*dim values, row-major) with frequency weights: vector i counts
// weights[i] times (a bootstrap resample's multiplicities), so the result
// equals FitGaussian on the data with each vector repeated that often; the
// covariance is normalised by sum(weights) - 1. The weights must be
// non-negative and sum to more than 1.
func FitGaussianWeighted(features []float32, dim int, weights []float64) (*Gaussian, error) {
	n, err := checkFeatures(features, dim)
	if err != nil {
		return nil, err
	}
	if len(weights) != n {
		return nil, fmt.Errorf("metrics: %d weights for %d vectors", len(weights), n)
	}
	if err := ugo.CheckMemory(fmt.Sprintf("metrics: a %dx%d covariance", dim, dim), ugo.TensorBytes(8, dim, dim)); err != nil {
		return nil, err
	}
	var wsum float64
	for i, w := range weights {
		if w < 0 || math.IsNaN(w) || math.IsInf(w, 0) {
			return nil, fmt.Errorf("metrics: weight %d is %v", i, w)
		}
		wsum += w
	}
	if !(wsum > 1) {
		return nil, fmt.Errorf("metrics: weights sum to %v, need more than 1", wsum)
	}
	mean := make([]float64, dim)
	for r := 0; r < n; r++ {
		w := weights[r]
		for j := 0; j < dim; j++ {
			mean[j] += w * float64(features[r*dim+j])
		}
	}
	for j := range mean {
		mean[j] /= wsum
	}
	// cov = A^T A / (wsum-1) with rows sqrt(w_r) (x_r - mean).
	a := mat.NewDense(n, dim, nil)
	for r := 0; r < n; r++ {
		sw := math.Sqrt(weights[r])
		row := a.RawRowView(r)
		for j := range row {
			row[j] = sw * (float64(features[r*dim+j]) - mean[j])
		}
	}
	cov := mat.NewSymDense(dim, nil)
	cov.SymOuterK(1/(wsum-1), a.T())
	return &Gaussian{Mean: mean, Cov: cov, N: n}, nil
}

// FrechetReference is a reference Gaussian with its covariance's square
// root computed once, for many distances against the same reference (the
// real test set, bootstrap resamples).
type FrechetReference struct {
	g    *Gaussian
	sqrt *mat.Dense
	tr   float64
}

// NewFrechetReference prepares g as a reference.
func NewFrechetReference(g *Gaussian) (*FrechetReference, error) {
	if err := g.check("reference"); err != nil {
		return nil, err
	}
	s, err := symSqrt(g.Cov)
	if err != nil {
		return nil, err
	}
	var tr float64
	for i := 0; i < g.Dim(); i++ {
		tr += g.Cov.At(i, i)
	}
	return &FrechetReference{g: g, sqrt: s, tr: tr}, nil
}

// Distance returns the Frechet distance between b and the reference; it
// equals FrechetDistance(reference, b).
func (r *FrechetReference) Distance(b *Gaussian) (float64, error) {
	if r == nil || r.g == nil {
		return 0, errors.New("metrics: nil FrechetReference (use NewFrechetReference)")
	}
	if err := b.check("second"); err != nil {
		return 0, err
	}
	return frechet(r.g, r.sqrt, r.tr, b)
}

// FrechetDistance returns the Frechet distance between two Gaussians of the
// same dimension (see the package documentation).
func FrechetDistance(a, b *Gaussian) (float64, error) {
	if err := a.check("first"); err != nil {
		return 0, err
	}
	if err := b.check("second"); err != nil {
		return 0, err
	}
	sqrtA, err := symSqrt(a.Cov)
	if err != nil {
		return 0, err
	}
	var trA float64
	for i := 0; i < a.Dim(); i++ {
		trA += a.Cov.At(i, i)
	}
	return frechet(a, sqrtA, trA, b)
}

func frechet(a *Gaussian, sqrtA *mat.Dense, trA float64, b *Gaussian) (float64, error) {
	if a.Dim() != b.Dim() {
		return 0, fmt.Errorf("metrics: dimensions differ: %d and %d", a.Dim(), b.Dim())
	}
	d := a.Dim()
	var meanTerm float64
	for i := range a.Mean {
		diff := a.Mean[i] - b.Mean[i]
		meanTerm += diff * diff
	}
	// M = sqrt(A) B sqrt(A) is symmetric PSD with the spectrum of A B.
	var tmp, m mat.Dense
	tmp.Mul(sqrtA, b.Cov)
	m.Mul(&tmp, sqrtA)
	sym := mat.NewSymDense(d, nil)
	for i := 0; i < d; i++ {
		for j := i; j < d; j++ {
			sym.SetSym(i, j, 0.5*(m.At(i, j)+m.At(j, i)))
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(sym, false) {
		return 0, errors.New("metrics: eigendecomposition did not converge")
	}
	var trSqrt float64
	for _, v := range eig.Values(nil) {
		if v > 0 {
			trSqrt += math.Sqrt(v)
		}
	}
	var trB float64
	for i := 0; i < d; i++ {
		trB += b.Cov.At(i, i)
	}
	fd := meanTerm + trA + trB - 2*trSqrt
	if fd < 0 && fd > -1e-9*(trA+trB+1) {
		fd = 0 // rounding around an exact match
	}
	return fd, nil
}

// symSqrt returns the principal square root of a symmetric positive
// semi-definite matrix (negative rounding noise in eigenvalues is clipped).
func symSqrt(s *mat.SymDense) (*mat.Dense, error) {
	var eig mat.EigenSym
	if !eig.Factorize(s, true) {
		return nil, errors.New("metrics: eigendecomposition did not converge")
	}
	vals := eig.Values(nil)
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	d := len(vals)
	scaled := mat.NewDense(d, d, nil)
	for j, v := range vals {
		r := 0.0
		if v > 0 {
			r = math.Sqrt(v)
		}
		for i := 0; i < d; i++ {
			scaled.Set(i, j, vecs.At(i, j)*r)
		}
	}
	var out mat.Dense
	out.Mul(scaled, vecs.T())
	return &out, nil
}
