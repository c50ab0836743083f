package metrics

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
	"pgregory.net/rapid"
)

func gaussianFromMoments(mean []float64, cov []float64) *Gaussian {
	return &Gaussian{Mean: mean, Cov: mat.NewSymDense(len(mean), cov), N: 2}
}

// For diagonal covariances the distance has a closed form:
// |mu1-mu2|^2 + sum_i (sqrt(s1_i) - sqrt(s2_i))^2.
func TestFrechetDistanceDiagonalClosedForm(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		d := rapid.IntRange(1, 6).Draw(t, "d")
		m1 := make([]float64, d)
		m2 := make([]float64, d)
		c1 := make([]float64, d*d)
		c2 := make([]float64, d*d)
		want := 0.0
		for i := 0; i < d; i++ {
			m1[i] = rapid.Float64Range(-3, 3).Draw(t, "m1")
			m2[i] = rapid.Float64Range(-3, 3).Draw(t, "m2")
			s1 := rapid.Float64Range(0.01, 5).Draw(t, "s1")
			s2 := rapid.Float64Range(0.01, 5).Draw(t, "s2")
			c1[i*d+i], c2[i*d+i] = s1, s2
			want += (m1[i]-m2[i])*(m1[i]-m2[i]) + (math.Sqrt(s1)-math.Sqrt(s2))*(math.Sqrt(s1)-math.Sqrt(s2))
		}
		got, err := FrechetDistance(gaussianFromMoments(m1, c1), gaussianFromMoments(m2, c2))
		require.NoError(t, err)
		if math.Abs(got-want) > 1e-9*(1+want) {
			t.Fatalf("FD = %v, want %v", got, want)
		}
	})
}

func TestFrechetDistanceIdentityAndSymmetry(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n, d = 400, 8
	a := make([]float32, n*d)
	b := make([]float32, n*d)
	for i := range a {
		a[i] = float32(rng.NormFloat64())
		b[i] = float32(rng.NormFloat64()*1.5 + 0.3)
	}
	ga, err := FitGaussian(a, d)
	require.NoError(t, err)
	gb, err := FitGaussian(b, d)
	require.NoError(t, err)
	self, err := FrechetDistance(ga, ga)
	require.NoError(t, err)
	require.InDelta(t, 0, self, 1e-9)
	ab, err := FrechetDistance(ga, gb)
	require.NoError(t, err)
	ba, err := FrechetDistance(gb, ga)
	require.NoError(t, err)
	require.InDelta(t, ab, ba, 1e-9*ab)
	// Population value: d*0.3^2 + d*(1.5-1)^2 = 8*0.09 + 8*0.25 = 2.72; the
	// sample estimate with n = 400 is close.
	require.InDelta(t, 2.72, ab, 0.35)
}

func TestFitGaussianMoments(t *testing.T) {
	// Three 2-D points with known mean and covariance.
	g, err := FitGaussian([]float32{0, 0, 2, 0, 1, 3}, 2)
	require.NoError(t, err)
	require.InDeltaSlice(t, []float64{1, 1}, g.Mean, 1e-12)
	require.InDelta(t, 1.0, g.Cov.At(0, 0), 1e-12)
	require.InDelta(t, 0.0, g.Cov.At(0, 1), 1e-12)
	require.InDelta(t, 3.0, g.Cov.At(1, 1), 1e-12)
}

func TestFitGaussianErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    []float32
		dim  int
	}{
		{"zero dim", []float32{1, 2}, 0},
		{"ragged", []float32{1, 2, 3}, 2},
		{"one vector", []float32{1, 2}, 2},
		{"NaN", []float32{1, float32(math.NaN()), 3, 4}, 2},
		{"Inf", []float32{1, float32(math.Inf(1)), 3, 4}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FitGaussian(tc.f, tc.dim)
			require.Error(t, err)
		})
	}
	_, err := FrechetDistance(gaussianFromMoments([]float64{0}, []float64{1}), gaussianFromMoments([]float64{0, 0}, []float64{1, 0, 0, 1}))
	require.Error(t, err)
	_, err = FrechetDistance(nil, nil)
	require.Error(t, err)
}

// Integer frequency weights equal fitting the data with each vector
// repeated that often.
func TestFitGaussianWeightedIsRepetition(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		d := rapid.IntRange(1, 4).Draw(t, "d")
		n := rapid.IntRange(2, 8).Draw(t, "n")
		f := make([]float32, n*d)
		for i := range f {
			f[i] = float32(rapid.Float64Range(-3, 3).Draw(t, "f"))
		}
		w := make([]float64, n)
		var rep []float32
		for i := range w {
			w[i] = float64(rapid.IntRange(0, 3).Draw(t, "w"))
			for k := 0; k < int(w[i]); k++ {
				rep = append(rep, f[i*d:(i+1)*d]...)
			}
		}
		if len(rep) < 2*d {
			w[0]++
			w[1]++
			rep = append(rep, f[:2*d]...)
		}
		got, err := FitGaussianWeighted(f, d, w)
		require.NoError(t, err)
		want, err := FitGaussian(rep, d)
		require.NoError(t, err)
		for i := 0; i < d; i++ {
			if math.Abs(got.Mean[i]-want.Mean[i]) > 1e-9 {
				t.Fatalf("mean %v, want %v", got.Mean, want.Mean)
			}
			for j := 0; j < d; j++ {
				if math.Abs(got.Cov.At(i, j)-want.Cov.At(i, j)) > 1e-9 {
					t.Fatalf("cov(%d,%d) %v, want %v", i, j, got.Cov.At(i, j), want.Cov.At(i, j))
				}
			}
		}
	})
}

func TestFitGaussianWeightedErrors(t *testing.T) {
	f := []float32{1, 2, 3, 4}
	for _, w := range [][]float64{{1}, {1, -1}, {0.5, 0.5}, {math.Inf(1), 1}} {
		_, err := FitGaussianWeighted(f, 2, w)
		require.Error(t, err, "weights %v", w)
	}
}

func TestFrechetReferenceMatchesFrechetDistance(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	const n, d = 300, 6
	a := make([]float32, n*d)
	b := make([]float32, n*d)
	for i := range a {
		a[i] = float32(rng.NormFloat64())
		b[i] = float32(rng.NormFloat64()*0.7 - 0.4)
	}
	ga, err := FitGaussian(a, d)
	require.NoError(t, err)
	gb, err := FitGaussian(b, d)
	require.NoError(t, err)
	ref, err := NewFrechetReference(ga)
	require.NoError(t, err)
	got, err := ref.Distance(gb)
	require.NoError(t, err)
	want, err := FrechetDistance(ga, gb)
	require.NoError(t, err)
	require.InDelta(t, want, got, 1e-12*want)
	_, err = ref.Distance(gaussianFromMoments([]float64{0}, []float64{1}))
	require.Error(t, err)
	_, err = ref.Distance(nil)
	require.Error(t, err)
	_, err = NewFrechetReference(nil)
	require.Error(t, err)
}
