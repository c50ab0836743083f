package fashion

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/internal/ortest"
	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/onnx"
	"github.com/ugo-diffusion/ugo/sampler"
	"github.com/ugo-diffusion/ugo/tiling"
	"github.com/ugo-diffusion/ugo/upscale"
)

// fixedFile is the shipped model with H and W static at 28
// (tools/fixedsize/fixed.py).
const fixedFile = "../../../testdata/models/fashion_unet_fixed28.onnx"

// noisePooledTo returns f-times-resolution standard normal noise whose fxf
// average pooling is z/f, as the pooling of white noise is: U(z)/f plus the
// part of independent noise w that pooling removes, w - U(D(w)).
func noisePooledTo(z []float32, n, size, f int, seed uint64) []float32 {
	big := f * size
	w := make([]float32, n*big*big)
	noise.NewTorchCPU(seed).Normal(w)
	dw := make([]float32, n*size*size)
	AreaDownsample(dw, w, n, big, big, f)
	e := make([]float32, len(w))
	for i := range n {
		for y := range big {
			for x := range big {
				lo := i*size*size + (y/f)*size + x/f
				e[i*big*big+y*big+x] = z[lo]/float32(f) + w[i*big*big+y*big+x] - dw[lo]
			}
		}
	}
	return e
}

// The fixed-size export refuses any size but 28x28 and predicts what the
// dynamic model predicts at 28x28.
func TestFixedSizeExport(t *testing.T) {
	ortest.Require(t)
	fixed, err := onnx.Open(fixedFile)
	require.NoError(t, err)
	defer fixed.Close()
	require.False(t, fixed.Info().DynamicSize())
	dyn := openModel(t)
	x, err := noise.NewTensor(noise.NewPCG(1), 3, 1, 28, 28)
	require.NoError(t, err)
	a := tensor.New(tensor.WithShape(3, 1, 28, 28), tensor.Of(tensor.Float32))
	b := tensor.New(tensor.WithShape(3, 1, 28, 28), tensor.Of(tensor.Float32))
	ts := []float32{900, 500, 20}
	require.NoError(t, fixed.PredictNoise(context.Background(), a, x, ts))
	require.NoError(t, dyn.PredictNoise(context.Background(), b, x, ts))
	for i, v := range b.Float32s() {
		if math.Abs(float64(a.Float32s()[i]-v)) > 1e-5 {
			t.Fatalf("element %d: fixed export %v, dynamic %v", i, a.Float32s()[i], v)
		}
	}
	x56, err := noise.NewTensor(noise.NewPCG(2), 1, 1, 56, 56)
	require.NoError(t, err)
	require.Error(t, fixed.PredictNoise(context.Background(), tensor.New(tensor.WithShape(1, 1, 56, 56), tensor.Of(tensor.Float32)), x56, []float32{500}),
		"the fixed export should refuse a 56x56 sample")
}

// The fixed-size export samples at 4x (112x112) through 28x28 tiles and
// Upsample Guidance, whose low-resolution call is the whole sample pooled
// to 28x28. Started from noise whose pooling is a native run's noise, the
// pooled samples are those of full-canvas guidance on the dynamic model and
// follow the native 28x28 samples, far more closely than tiles alone, which
// draw a garment per tile.
func TestFixedSizeExportSamplesAt4x(t *testing.T) {
	ortest.Require(t)
	fixed, err := onnx.Open(fixedFile)
	require.NoError(t, err)
	defer fixed.Close()
	dyn := openModel(t)
	const n, steps, f = 2, 10, 4
	z := make([]float32, n*TrainedSize*TrainedSize)
	noise.NewTorchCPU(21).Normal(z)
	e := noisePooledTo(z, n, TrainedSize, f, 22)
	ctx := context.Background()
	run := func(model ugo.Denoiser, hook sampler.Hook, init []float32, size int) []float32 {
		t.Helper()
		solver, err := NewSolver("ddim", false)
		require.NoError(t, err)
		x := tensor.New(tensor.WithShape(n, 1, size, size), tensor.WithBacking(append([]float32(nil), init...)))
		require.NoError(t, sampler.Sample(ctx, model, solver, x, sampler.Options{Steps: steps, Hook: hook}))
		if size == TrainedSize {
			return x.Float32s()
		}
		pooled := make([]float32, len(z))
		AreaDownsample(pooled, x.Float32s(), n, size, size, size/TrainedSize)
		return pooled
	}
	rms := func(a, b []float32) float64 {
		var s float64
		for i := range a {
			d := float64(a[i] - b[i])
			s += d * d
		}
		return math.Sqrt(s / float64(len(a)))
	}
	opts := Guided(1)
	opts.Factors = []int{f, f}
	tiles, err := tiling.Tiled(fixed, tiling.Options{Size: [2]int{TrainedSize, TrainedSize}})
	require.NoError(t, err)
	tiledUG, err := guidance.UpsampleHighLow(tiles, fixed, Schedule(), opts)
	require.NoError(t, err)
	fullUG, err := guidance.Upsample(dyn, Schedule(), opts)
	require.NoError(t, err)
	clamp, err := Clamp(opts)
	require.NoError(t, err)

	native := run(fixed, nil, z, TrainedSize)
	start := time.Now()
	pTiledUG := run(tiledUG, clamp, e, f*TrainedSize)
	tTiled := time.Since(start)
	start = time.Now()
	pFullUG := run(fullUG, clamp, e, f*TrainedSize)
	tFull := time.Since(start)
	rTiledUG, rFullUG, rTiles := rms(pTiledUG, native), rms(pFullUG, native), rms(run(tiles, nil, e, f*TrainedSize), native)
	rBetween := rms(pTiledUG, pFullUG)
	t.Logf("pooled 4x vs native 28x28, RMS: tiles + UG (fixed export) %.4f, full-canvas UG (dynamic export) %.4f, tiles alone %.4f; tiles + UG vs full-canvas UG %.5f; time tiles + UG / full canvas %.2f (shared machine)",
		rTiledUG, rFullUG, rTiles, rBetween, tTiled.Seconds()/tFull.Seconds())
	// With w = 1 throughout and the block clamp, the pooled guided
	// prediction is the low-resolution call's, whatever the high-resolution
	// branch: pooled, tiled and full-canvas guidance follow the same path.
	require.Less(t, rBetween, 0.01, "pooled tiles + UG should equal pooled full-canvas UG")
	require.Less(t, rTiledUG, 0.25, "tiled guided samples should follow the native ones")
	require.Less(t, rTiledUG, rTiles/3, "tiles with guidance should track the native samples far better than tiles alone")
}

// edgeJump returns the mean absolute difference between neighbouring
// columns and rows across the given positions (a tile edge at p is between
// p-1 and p) of n images of size x size.
func edgeJump(img []float32, n, size int, at []int) float64 {
	var sum float64
	count := 0
	for i := range n {
		im := img[i*size*size : (i+1)*size*size]
		for _, p := range at {
			for k := range size {
				sum += math.Abs(float64(im[k*size+p] - im[k*size+p-1]))   // across a column edge
				sum += math.Abs(float64(im[p*size+k] - im[(p-1)*size+k])) // across a row edge
				count += 2
			}
		}
	}
	return sum / float64(count)
}

// A tiled SDEdit refinement (28 -> 56, tiles of 28 overlapping by 7, with
// Upsample Guidance) shows no seams: across the tile edges neighbouring
// pixels differ no more than they do in the untiled refinement of the same
// images, and less than with one-pixel ramps (a hard cut at every tile
// edge).
func TestTiledRefineHasNoSeams(t *testing.T) {
	m := openModel(t)
	const n, steps = 4, 10
	ctx := context.Background()
	run := func(tile *tiling.Options) []float32 {
		t.Helper()
		solver, err := NewSolver("ddim", false)
		require.NoError(t, err)
		ug := Guided(1)
		ug.Factors = nil
		s := upscale.Sampling{Model: m, Schedule: Schedule(), Solver: solver, Steps: steps, Channels: 1,
			Trained: [2]int{TrainedSize, TrainedSize}, Noise: noise.TorchSeeds(Seeds(40, n)...), ClampRange: ClipRange}
		outs, err := upscale.Run(ctx, s, nil, upscale.Generate{Height: TrainedSize, Width: TrainedSize},
			upscale.Refine{Height: 56, Width: 56, Strength: 0.6, Upsample: &ug, Tile: tile})
		require.NoError(t, err)
		return outs[1].Float32s()
	}
	// Tiles at 0, 14 and 28 (for both overlaps: three tiles of 28 cover 56
	// with at least 7, or 1): edges at 14, 28 and 42. With a one-pixel
	// ramp the weights are flat across each overlap, and a tile's
	// prediction starts or stops counting at once at its edges.
	edges := []int{14, 28, 42}
	whole := edgeJump(run(nil), n, 56, edges)
	tiled := edgeJump(run(&tiling.Options{Overlap: [2]int{7, 7}}), n, 56, edges)
	cut := edgeJump(run(&tiling.Options{Overlap: [2]int{1, 1}}), n, 56, edges)
	t.Logf("mean |jump| across the tile edges: untiled %.4f, tiled with 7-pixel ramps %.4f, with 1-pixel ramps %.4f", whole, tiled, cut)
	require.Less(t, tiled, 1.25*whole, "tiled refinement should show no seams")
	require.Greater(t, cut, tiled, "tiles with one-pixel ramps should show their seams more")
}
