package upscale

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ugo-diffusion/ugo/noise"
)

// PerImage draws each image's part from its own source, one call per part,
// so an image's noise does not depend on the batch.
func TestPerImage(t *testing.T) {
	batch := PerImage(TorchSeeds(1, 2, 3)...)
	got := make([]float32, 3*40)
	batch.Normal(got)
	batch.Normal(got[:60]) // a second draw continues every stream (two parts of 20)
	_ = got

	for i, seed := range []uint64{1, 2, 3} {
		want := make([]float32, 40)
		noise.NewTorchCPU(seed).Normal(want)
		fresh := make([]float32, 3*40)
		PerImage(TorchSeeds(1, 2, 3)...).Normal(fresh)
		require.Equal(t, want, fresh[i*40:(i+1)*40], "image %d", i)
	}
	one := TorchSeeds(7)
	require.Equal(t, one[0], PerImage(one...), "a single source is returned as it is")

	require.Panics(t, func() { PerImage() })
	require.Panics(t, func() { PerImage(nil) })
	require.Panics(t, func() { PerImage(TorchSeeds(1, 2)...).Normal(make([]float32, 5)) })
}

// Successive draws continue each image's stream: the second draw of a
// batch equals the second call on the image's own source.
func TestPerImageContinues(t *testing.T) {
	batch := PerImage(TorchSeeds(4, 5)...)
	first, second := make([]float32, 2*32), make([]float32, 2*32)
	batch.Normal(first)
	batch.Normal(second)
	for i, seed := range []uint64{4, 5} {
		src := noise.NewTorchCPU(seed)
		a, b := make([]float32, 32), make([]float32, 32)
		src.Normal(a)
		src.Normal(b)
		require.Equal(t, a, first[i*32:(i+1)*32])
		require.Equal(t, b, second[i*32:(i+1)*32])
	}
}
