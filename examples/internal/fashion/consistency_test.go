package fashion

import (
	"context"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/sampler"
)

// pooledNoise returns 2x-resolution standard normal noise whose 2x2
// average pooling is z/2, as the pooling of white noise is: U(z)/2 plus the
// part of independent noise w that pooling removes, w - U(D(w)).
func pooledNoise(z []float32, n, size int, seed uint64) []float32 {
	big := 2 * size
	w := make([]float32, n*big*big)
	noise.NewTorchCPU(seed).Normal(w)
	dw := make([]float32, n*size*size)
	AreaDownsample(dw, w, n, big, big, 2)
	e := make([]float32, len(w))
	for i := range n {
		for y := range big {
			for x := range big {
				lo := i*size*size + (y/2)*size + x/2
				e[i*big*big+y*big+x] = z[lo]/2 + w[i*big*big+y*big+x] - dw[lo]
			}
		}
	}
	return e
}

// TestGuidedPooledTracksNative checks the property Upsample Guidance is
// built on, on the shipped model: started from noise whose pooling is the
// native run's noise, the 2x guided samples, pooled to 28x28, follow the
// native samples. With the block-wise x0 clamp (Clamp) they must
// follow them closely; diffusers' DDIM with an element-wise x0 clip and no
// block clamp drifts, and plain 2x sampling does not follow at all.
func TestGuidedPooledTracksNative(t *testing.T) {
	m := openModel(t)
	const n, steps = 4, 50
	z := make([]float32, n*TrainedSize*TrainedSize)
	noise.NewTorchCPU(7).Normal(z)
	e := pooledNoise(z, n, TrainedSize, 8)
	ctx := context.Background()

	run := func(diffusersDDIM bool, guide *guidance.UpsampleOptions, clamp bool, init []float32, size int) []float32 {
		t.Helper()
		solver, err := NewSolver("ddim", diffusersDDIM)
		require.NoError(t, err)
		var model ugo.Denoiser = m
		var hook sampler.Hook
		if guide != nil {
			model, err = guidance.Upsample(m, Schedule(), *guide)
			require.NoError(t, err)
			if clamp {
				hook, err = Clamp(*guide)
				require.NoError(t, err)
			}
		}
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

	guide := Guided(1)
	native := run(false, nil, false, z, TrainedSize)
	rBlock := rms(run(false, &guide, true, e, 2*TrainedSize), native)
	rElem := rms(run(true, &guide, false, e, 2*TrainedSize), run(true, nil, false, z, TrainedSize))
	rPlain := rms(run(false, nil, false, e, 2*TrainedSize), native)
	t.Logf("pooled 2x vs native, RMS: guided with block clamp %.4f, guided with diffusers' DDIM and element-wise clip %.4f, plain %.4f", rBlock, rElem, rPlain)
	require.Less(t, rBlock, 0.08, "guided samples with the block clamp should follow the native ones")
	require.Less(t, rBlock, rElem/3, "the block clamp should track the native samples much better than an element-wise clip")
	require.Less(t, rBlock, rPlain/5, "guided samples should track the native ones far better than plain ones")
}
