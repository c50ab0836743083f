package pipeline

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/tiling"
)

// With Request.Tile the UNet only ever sees tiles of the training size:
// the full-resolution calls in tiles, the low-resolution call of Upsample
// Guidance whole, at the training size; without Upsample Guidance, tiles
// only. The trained latent model (trained at 32x32 pixels, 8x8 latents)
// generates at 4x this way.
func TestGenerateTiled(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		ug   *guidance.UpsampleOptions
	}{{"tiles + UG", nil}, {"tiles alone", &guidance.UpsampleOptions{}}} {
		m := load(t, ldmDir("fashion_ldm_eps"))
		rec := &recorder{}
		m.hook = rec.wrap
		res, err := m.Generate(ctx, Request{Prompt: "a shirt", Width: 128, Height: 128, Steps: 6, Seed: 5, Upsample: c.ug,
			Tile: &tiling.Options{}})
		require.NoError(t, err, c.name)
		p := res.Settings
		require.Equal(t, [2]int{8, 8}, p.Tile.Size, c.name)
		require.Equal(t, []int{1, 4, 32, 32}, []int(res.Latents.Shape()))
		for _, cl := range rec.calls {
			require.Equal(t, []int{8, 8}, cl.shape[2:], "%s: a UNet call of shape %v", c.name, cl.shape)
		}
		// 32 = 8 + 4*6: 5x5 tiles per step with the default overlap of 2,
		// and one low-resolution call per guided step.
		require.Len(t, rec.calls, 25*6+p.GuidedSteps, c.name)
		if c.ug == nil {
			require.Positive(t, p.GuidedSteps, c.name)
		} else {
			require.Zero(t, p.GuidedSteps, c.name)
		}
		for _, v := range res.Pixels.Float32s() {
			require.False(t, math.IsNaN(float64(v)) || math.IsInf(float64(v), 0), c.name)
		}
	}

	// Tiling options are checked.
	m := load(t, ldmDir("fashion_ldm_eps"))
	_, err := m.Resolve(Request{Width: 64, Height: 64, Tile: &tiling.Options{Size: [2]int{8, 8}, Overlap: [2]int{8, 0}}})
	require.ErrorContains(t, err, "overlap")
	p, err := m.Resolve(Request{Width: 64, Height: 64})
	require.NoError(t, err)
	require.Nil(t, p.Tile)
	require.True(t, slices.Equal(p.Latent, p.tileShape()))
}
