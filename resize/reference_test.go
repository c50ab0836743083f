package resize

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMatchesReferenceLibraries compares every strategy with the library
// whose convention it follows, on resizes made by testdata/reference.py
// (torch 1.13's interpolate and PIL's Image.resize in float32 mode "F").
func TestMatchesReferenceLibraries(t *testing.T) {
	data, err := os.ReadFile("testdata/reference.json")
	require.NoError(t, err)
	var ref struct {
		H, W  int
		Src   []float32
		Cases []struct {
			Strategy, Library string
			H, W              int
			Want              []float64
		}
	}
	require.NoError(t, json.Unmarshal(data, &ref))
	require.Len(t, ref.Src, ref.H*ref.W)
	require.NotEmpty(t, ref.Cases)
	for _, c := range ref.Cases {
		s, err := ByName(c.Strategy)
		require.NoError(t, err)
		got := make([]float32, c.H*c.W)
		mustPlan(t, s, c.H, c.W, ref.H, ref.W).Scale(got, ref.Src)
		require.Len(t, c.Want, len(got))
		worst := 0.0
		for i := range got {
			worst = max(worst, math.Abs(float64(got[i])-c.Want[i]))
		}
		// Both libraries compute in float32 (PIL with its own rounding
		// of the weights), so agreement is to a few float32 ulps.
		if worst > 2e-6 {
			t.Errorf("%s %dx%d->%dx%d vs %s: max difference %.3g", s, ref.H, ref.W, c.H, c.W, c.Library, worst)
		}
	}
}
