package metrics

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
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
	n := len(features) / dim
	if n < 2 {
		return nil, fmt.Errorf("metrics: %d feature vectors, need at least 2", n)
	}
	mean := make([]float64, dim)
	for i, v := range features {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("metrics: feature %d of vector %d is %v", i%dim, i/dim, v)
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

// FrechetDistance returns the Frechet distance between two Gaussians of the
// same dimension (see the package documentation).
func FrechetDistance(a, b *Gaussian) (float64, error) {
	if a == nil || b == nil {
		return 0, errors.New("metrics: nil Gaussian")
	}
	if a.Dim() != b.Dim() {
		return 0, fmt.Errorf("metrics: dimensions differ: %d and %d", a.Dim(), b.Dim())
	}
	d := a.Dim()
	var meanTerm float64
	for i := range a.Mean {
		diff := a.Mean[i] - b.Mean[i]
		meanTerm += diff * diff
	}
	sqrtA, err := symSqrt(a.Cov)
	if err != nil {
		return 0, err
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
	var trA, trB float64
	for i := 0; i < d; i++ {
		trA += a.Cov.At(i, i)
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
