package video

import (
	"math"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func TestLabelChanges(t *testing.T) {
	labels := []int{1, 1, 1, 1 /**/, 2, 3, 2, 2 /**/, 0, 0, 5, 5}
	require.Equal(t, []int{0, 2, 1}, LabelChanges(labels, 3, 4))
}

func TestFrameDiffs(t *testing.T) {
	const per = TrainedSize * TrainedSize
	frames := make([]float32, 2*3*per)
	for i := range per {
		frames[per+i] = 0.5  // clip 0: 0 -> 0.5 -> 0
		frames[3*per+i] = -1 // clip 1: -1 -> 1 -> 1
		frames[4*per+i] = 1
		frames[5*per+i] = 1
	}
	got := FrameDiffs(frames, 2, 3)
	require.InDeltaSlice(t, []float64{0.5, 0.5, 2, 0}, got, 1e-12)
}

// Wasserstein1 on hand-computed cases, and its identities: zero on equal
// samples, symmetric, a shift by c costs |c|, and an integer weight equals
// repeating the value.
func TestWasserstein1(t *testing.T) {
	require.InDelta(t, 0.5, Wasserstein1([]float64{0, 1}, nil, []float64{0.5}, nil), 1e-12)
	require.InDelta(t, 2.0/3, Wasserstein1([]float64{0, 1, 2}, nil, []float64{1}, nil), 1e-12)
	require.InDelta(t, 1.5, Wasserstein1([]float64{0}, []float64{3}, []float64{1, 2}, []float64{1, 1}), 1e-12)
	rapid.Check(t, func(t *rapid.T) {
		a := rapid.SliceOfN(rapid.Float64Range(-5, 5), 1, 30).Draw(t, "a")
		b := rapid.SliceOfN(rapid.Float64Range(-5, 5), 1, 30).Draw(t, "b")
		c := rapid.Float64Range(-3, 3).Draw(t, "c")
		if d := Wasserstein1(a, nil, slices.Clone(a), nil); d > 1e-12 {
			t.Fatalf("W1(a, a) = %v", d)
		}
		if d1, d2 := Wasserstein1(a, nil, b, nil), Wasserstein1(b, nil, a, nil); math.Abs(d1-d2) > 1e-9 {
			t.Fatalf("not symmetric: %v, %v", d1, d2)
		}
		shifted := make([]float64, len(a))
		for i, v := range a {
			shifted[i] = v + c
		}
		if d := Wasserstein1(a, nil, shifted, nil); math.Abs(d-math.Abs(c)) > 1e-9 {
			t.Fatalf("shift %v: W1 = %v", c, d)
		}
		w := make([]float64, len(a))
		var rep []float64
		for i, v := range a {
			k := rapid.IntRange(1, 3).Draw(t, "k")
			w[i] = float64(k)
			for range k {
				rep = append(rep, v)
			}
		}
		if d1, d2 := Wasserstein1(a, w, b, nil), Wasserstein1(rep, nil, b, nil); math.Abs(d1-d2) > 1e-9 {
			t.Fatalf("weights %v: %v, repeated: %v", w, d1, d2)
		}
	})
}
