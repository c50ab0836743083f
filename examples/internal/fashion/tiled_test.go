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
	run := func(model ugo.Denoiser, init []float32, size int) []float32 {
		t.Helper()
		solver, err := NewSolver("ddim", false)
		require.NoError(t, err)
		x := tensor.New(tensor.WithShape(n, 1, size, size), tensor.WithBacking(append([]float32(nil), init...)))
		require.NoError(t, sampler.Sample(ctx, model, solver, x, sampler.Options{Steps: steps}))
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

	native := run(fixed, z, TrainedSize)
	start := time.Now()
	pTiledUG := run(tiledUG, e, f*TrainedSize)
	tTiled := time.Since(start)
	start = time.Now()
	pFullUG := run(fullUG, e, f*TrainedSize)
	tFull := time.Since(start)
	rTiledUG, rFullUG, rTiles := rms(pTiledUG, native), rms(pFullUG, native), rms(run(tiles, e, f*TrainedSize), native)
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
