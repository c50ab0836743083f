package metrics

import (
	"errors"
	"math"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/ugo-diffusion/ugo"
)

// TestHostileGaussians: distances refuse Gaussians without dimensions, with
// mismatched or missing covariances, or non-finite values, and the fits
// refuse NaN features and dimensions whose covariance would not fit in
// memory.
func TestHostileGaussians(t *testing.T) {
	good, err := FitGaussian([]float32{0, 1, 2, 3, 1, 1, 4, 0}, 2)
	if err != nil {
		t.Fatal(err)
	}
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
			if _, err := FrechetDistance(pair[0], pair[1]); err == nil || strings.Contains(err.Error(), "%!") {
				t.Errorf("FrechetDistance with %s: %v", name, err)
			}
		}
		tried++
		if name != "other dimension" {
			if _, err := NewFrechetReference(g); err == nil {
				t.Errorf("NewFrechetReference(%s) accepted", name)
			}
		}
		ref, err := NewFrechetReference(good)
		if err != nil {
			t.Fatal(err)
		}
		tried++
		if _, err := ref.Distance(g); err == nil {
			t.Errorf("Distance(%s) accepted", name)
		}
	}
	var nilRef *FrechetReference
	if _, err := nilRef.Distance(good); err == nil {
		t.Error("nil reference accepted")
	}
	for _, f := range [][]float32{{0, float32(math.NaN()), 1, 2}, {float32(math.Inf(1)), 0, 1, 2}} {
		tried += 2
		if _, err := FitGaussian(f, 2); !errors.Is(err, ugo.ErrNonFinite) {
			t.Errorf("FitGaussian with %v: %v", f, err)
		}
		if _, _, err := KID(f, []float32{0, 1, 2, 3}, 2, KIDOptions{}); !errors.Is(err, ugo.ErrNonFinite) {
			t.Errorf("KID with %v: %v", f, err)
		}
	}
	var me *ugo.MemoryError
	tried += 2
	if _, err := FitGaussian(make([]float32, 2<<16), 1<<16); !errors.As(err, &me) {
		t.Errorf("a 2^16-dimensional covariance: %v", err)
	}
	if _, err := FitGaussianWeighted(make([]float32, 2<<16), 1<<16, []float64{1, 1}); !errors.As(err, &me) {
		t.Errorf("a weighted 2^16-dimensional covariance: %v", err)
	}
	for _, dim := range []int{0, -1, 3} {
		tried++
		if _, err := FitGaussian([]float32{1, 2, 3, 4}, dim); err == nil {
			t.Errorf("FitGaussian dim %d accepted", dim)
		}
	}
	t.Logf("%d hostile inputs", tried)
}
