package metrics

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// One subset covering the whole reference makes KID the plain unbiased
// MMD^2, which tools/goldens/kid_golden.py computes in float64 numpy.
func TestKIDGolden(t *testing.T) {
	b, err := os.ReadFile("testdata/kid_golden.json")
	require.NoError(t, err)
	var cases []struct {
		Name string
		Dim  int
		X, Y []float32
		MMD2 float64
	}
	require.NoError(t, json.Unmarshal(b, &cases))
	require.Len(t, cases, 3)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			m := len(c.Y) / c.Dim
			for _, subsets := range []int{1, 3} {
				got, std, err := KID(c.X, c.Y, c.Dim, KIDOptions{Subsets: subsets, SubsetSize: m, Seed: 9})
				require.NoError(t, err)
				require.InDelta(t, c.MMD2, got, 1e-9*(1+math.Abs(c.MMD2)))
				// Every subset is all of Y, in another order: no spread.
				require.InDelta(t, 0, std, 1e-9*(1+math.Abs(c.MMD2)))
			}
		})
	}
}

// Integer weights equal the U-statistic over the data with each vector
// repeated that often, pairing only copies of distinct vectors.
func TestKIDWeightsAreMultiplicities(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		d := rapid.IntRange(1, 4).Draw(t, "d")
		n := rapid.IntRange(2, 7).Draw(t, "n")
		m := rapid.IntRange(2, 6).Draw(t, "m")
		x := make([]float32, n*d)
		y := make([]float32, m*d)
		for i := range x {
			x[i] = float32(rapid.Float64Range(-2, 2).Draw(t, "x"))
		}
		for i := range y {
			y[i] = float32(rapid.Float64Range(-2, 2).Draw(t, "y"))
		}
		w := make([]float64, n)
		positive := 0
		for i := range w {
			w[i] = float64(rapid.IntRange(0, 3).Draw(t, "w"))
			if w[i] > 0 {
				positive++
			}
		}
		if positive < 2 {
			w[0], w[1] = 1, 1
		}
		ref, err := NewKIDReference(y, d, KIDOptions{Subsets: 1, SubsetSize: m})
		require.NoError(t, err)
		s, err := ref.Prepare(x)
		require.NoError(t, err)
		got, _, err := s.KID(w)
		require.NoError(t, err)
		// Brute force over the expanded data.
		var idx []int
		for i, c := range w {
			for k := 0; k < int(c); k++ {
				idx = append(idx, i)
			}
		}
		k := func(a, b []float32) float64 {
			var dot float64
			for j := range a {
				dot += float64(a[j]) * float64(b[j])
			}
			v := dot/float64(d) + 1
			return v * v * v
		}
		row := func(s []float32, i int) []float32 { return s[i*d : (i+1)*d] }
		var xx, pairs float64
		for _, i := range idx {
			for _, j := range idx {
				if i != j {
					xx += k(row(x, i), row(x, j))
					pairs++
				}
			}
		}
		var yy, xy float64
		for i := 0; i < m; i++ {
			for j := 0; j < m; j++ {
				if i != j {
					yy += k(row(y, i), row(y, j))
				}
			}
			for _, a := range idx {
				xy += k(row(x, a), row(y, i))
			}
		}
		want := xx/pairs + yy/float64(m*(m-1)) - 2*xy/float64(len(idx)*m)
		if math.Abs(got-want) > 1e-9*(1+math.Abs(want)) {
			t.Fatalf("weighted KID %v, brute force %v", got, want)
		}
	})
}

// KID is an unbiased estimate: near zero for two samples of one
// distribution (either sign), clearly positive for different ones.
func TestKIDSeparatesDistributions(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const d, n = 8, 300
	draw := func(n int, scale, shift float64) []float32 {
		f := make([]float32, n*d)
		for i := range f {
			f[i] = float32(rng.NormFloat64()*scale + shift)
		}
		return f
	}
	ref := draw(1000, 1, 0)
	same, sameStd, err := KID(draw(n, 1, 0), ref, d, KIDOptions{Subsets: 5, SubsetSize: 400, Seed: 1})
	require.NoError(t, err)
	diff, _, err := KID(draw(n, 1.3, 0.2), ref, d, KIDOptions{Subsets: 5, SubsetSize: 400, Seed: 1})
	require.NoError(t, err)
	t.Logf("same %.4g ± %.2g, different %.4g", same, sameStd, diff)
	require.Greater(t, sameStd, 0.0)
	require.Less(t, math.Abs(same), 0.05*diff)
	require.Greater(t, diff, 0.1)
}

func TestKIDErrors(t *testing.T) {
	y := []float32{0, 1, 2, 3, 4, 5}
	_, _, err := KID([]float32{1, 2}, y, 2, KIDOptions{})
	require.Error(t, err, "one generated vector")
	_, _, err = KID([]float32{1, 2, 3}, y, 2, KIDOptions{})
	require.Error(t, err, "ragged")
	_, _, err = KID([]float32{1, 2, 3, float32(math.NaN())}, y, 2, KIDOptions{})
	require.Error(t, err, "NaN")
	_, _, err = KID([]float32{1, 2, 3, 4}, y, 0, KIDOptions{})
	require.Error(t, err, "zero dimension")
	ref, err := NewKIDReference(y, 2, KIDOptions{})
	require.NoError(t, err)
	s, err := ref.Prepare([]float32{1, 2, 3, 4, 5, 6})
	require.NoError(t, err)
	require.Equal(t, 3, s.Len())
	for _, w := range [][]float64{{1, 1}, {1, 0, 0}, {-1, 1, 1}, {math.NaN(), 1, 1}} {
		_, _, err := s.KID(w)
		require.Error(t, err, "weights %v", w)
	}
}
