package upscale

import (
	"context"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/tiling"
)

// tileCounter counts the calls of a model that carry a tile's region off
// the origin.
type tileCounter struct {
	model ugo.Denoiser
	tiles atomic.Int64
}

func (c *tileCounter) PredictNoise(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
	if r, ok := ugo.RegionFrom(ctx); ok && r.Offset != [2]int{} {
		c.tiles.Add(1)
	}
	return c.model.PredictNoise(ctx, dst, x, t)
}

// A model whose prediction is pointwise gives the same Generate and Refine
// tiled (tiles of the training size, with or without jitter) as untiled,
// with Upsample Guidance and Structure Guidance, up to float32 rounding;
// and the tiles did run.
func TestTiledStagesMatchUntiledForPointwiseModel(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	x := randTensor(r, 3, 1, 8, 8)
	n := 0
	for _, tile := range []tiling.Options{{}, {Jitter: true, Seed: 3, Blend: tiling.Gaussian, Batch: 2}, {Size: [2]int{6, 10}, Overlap: [2]int{1, 3}}} {
		for _, stage := range []struct {
			name    string
			untiled Stage
			tiled   func(*tiling.Options) Stage
		}{
			{"Generate 4x", Generate{Height: 32, Width: 32, Upsample: ugOptions()}, func(o *tiling.Options) Stage {
				return Generate{Height: 32, Width: 32, Upsample: ugOptions(), Tile: o}
			}},
			{"Refine 2x", Refine{Height: 16, Width: 16, Strength: 0.6, Upsample: ugOptions(), Structure: &guidance.StructureOptions{}}, func(o *tiling.Options) Stage {
				return Refine{Height: 16, Width: 16, Strength: 0.6, Upsample: ugOptions(), Structure: &guidance.StructureOptions{}, Tile: o}
			}},
			{"Refine 3x no UG", Refine{Height: 24, Width: 24, Strength: 0.5}, func(o *tiling.Options) Stage {
				return Refine{Height: 24, Width: 24, Strength: 0.5, Tile: o}
			}},
		} {
			counter := &tileCounter{model: pointwise{0.4, 0.3}}
			s := testSampling(counter)
			want, err := stage.untiled.Run(context.Background(), &s, x)
			require.NoError(t, err)
			require.Zero(t, counter.tiles.Load(), "%s untiled", stage.name)
			s = testSampling(counter)
			o := tile
			got, err := stage.tiled(&o).Run(context.Background(), &s, x)
			require.NoError(t, err)
			require.NotZero(t, counter.tiles.Load(), "%s tiled with %+v: no tile call", stage.name, tile)
			for i, v := range want.Float32s() {
				if g := got.Float32s()[i]; math.Abs(float64(g-v)) > 2e-5*(1+math.Abs(float64(v))) {
					t.Fatalf("%s tiled with %+v: element %d is %v, untiled %v", stage.name, tile, i, g, v)
				}
			}
			n++
		}
	}
	t.Logf("%d stage and tiling settings", n)
}

func TestTiledStageErrors(t *testing.T) {
	x := randTensor(rand.New(rand.NewPCG(1, 2)), 3, 1, 8, 8)
	s := testSampling(pointwise{0.4, 0.3})
	s.Trained = [2]int{}
	_, err := Refine{Height: 16, Width: 16, Strength: 0.5, Tile: &tiling.Options{}}.Run(context.Background(), &s, x)
	require.ErrorContains(t, err, "Tile.Size or Sampling.Trained")
	s = testSampling(pointwise{0.4, 0.3})
	_, err = Generate{Height: 16, Width: 16, Tile: &tiling.Options{Overlap: [2]int{9, 0}}}.Run(context.Background(), &s, nil)
	require.ErrorContains(t, err, "overlap")
}
