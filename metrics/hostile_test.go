package metrics

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/ugo-diffusion/ugo"
)

// TestHostileGaussians: distances refuse Gaussians without dimensions, with
// mismatched or missing covariances, or non-finite values, and the fits
// refuse NaN features and dimensions whose covariance would not fit in
// memory.
func TestHostileGaussians(t *testing.T) {
	good, err := FitGaussian([]float32{0, 1, 2, 3, 1, 1, 4, 0}, 2)
	require.NoError(t, err)
	nanCov := mat.NewSymDense(2, []float64{1, 0, 0, math.NaN()})
	cases := map[string]*Gaussian{
		"nil": nil, "zero": {}, "no covariance": {Mean: []float64{0, 1}},
		"covariance of another size": {Mean: []float64{0, 1}, Cov: mat.NewSymDense(3, nil)},
		"NaN mean":                   {Mean: []float64{math.NaN(), 1}, Cov: mat.NewSymDense(2, nil)},
		"NaN covariance":             {Mean: []float64{0, 1}, Cov: nanCov},
		"other dimension":            {Mean: []float64{0}, Cov: mat.NewSymDense(1, []float64{1})},
	}
	tried := 0
	for name, g := range cases {
		for _, pair := range [][2]*Gaussian{{g, good}, {good, g}} {
			tried++
			_, err := FrechetDistance(pair[0], pair[1])
			if assert.Error(t, err, "FrechetDistance with %s", name) {
				assert.NotContains(t, err.Error(), "%!", "FrechetDistance with %s", name)
			}
		}
		tried++
		if name != "other dimension" {
			_, err := NewFrechetReference(g)
			assert.Error(t, err, "NewFrechetReference(%s)", name)
		}
		ref, err := NewFrechetReference(good)
		require.NoError(t, err)
		tried++
		_, err = ref.Distance(g)
		assert.Error(t, err, "Distance(%s)", name)
	}
	var nilRef *FrechetReference
	_, err = nilRef.Distance(good)
	assert.Error(t, err, "nil reference")
	for _, f := range [][]float32{{0, float32(math.NaN()), 1, 2}, {float32(math.Inf(1)), 0, 1, 2}} {
		tried += 2
		_, err := FitGaussian(f, 2)
		assert.ErrorIs(t, err, ugo.ErrNonFinite, "FitGaussian with %v", f)
		_, _, err = KID(f, []float32{0, 1, 2, 3}, 2, KIDOptions{})
		assert.ErrorIs(t, err, ugo.ErrNonFinite, "KID with %v", f)
	}
	var me *ugo.MemoryError
	tried += 2
	_, err = FitGaussian(make([]float32, 2<<16), 1<<16)
	assert.ErrorAs(t, err, &me, "a 2^16-dimensional covariance")
	_, err = FitGaussianWeighted(make([]float32, 2<<16), 1<<16, []float64{1, 1})
	assert.ErrorAs(t, err, &me, "a weighted 2^16-dimensional covariance")
	for _, dim := range []int{0, -1, 3} {
		tried++
		_, err := FitGaussian([]float32{1, 2, 3, 4}, dim)
		assert.Error(t, err, "FitGaussian dim %d", dim)
	}
	t.Logf("%d hostile inputs", tried)
}
