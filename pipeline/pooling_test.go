package pipeline

import (
	"compress/gzip"
	"context"
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// fashionTestImages reads the first n Fashion-MNIST test images as the
// latent models were trained on them: 28x28 padded to 32x32 with the
// background value, in [-1, 1], three equal channels. The data are installed
// by `make data` (Debian's dataset-fashion-mnist).
func fashionTestImages(t *testing.T, n int) *tensor.Dense {
	t.Helper()
	f, err := os.Open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
	if err != nil {
		t.Skipf("Fashion-MNIST test images not installed (make data): %v", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	buf := make([]byte, 16+n*28*28)
	_, err = io.ReadFull(zr, buf)
	require.NoError(t, err)
	out := make([]float32, n*3*32*32)
	for i := range out {
		out[i] = -1
	}
	for k := range n {
		for y := range 28 {
			for x := range 28 {
				v := float32(buf[16+k*784+y*28+x])/127.5 - 1
				for c := range 3 {
					out[((k*3+c)*32+y+2)*32+x+2] = v
				}
			}
		}
	}
	return tensor.New(tensor.WithShape(n, 3, 32, 32), tensor.WithBacking(out))
}

// The shipped latent models' VAE was trained to commute with 2x2 pooling:
// at 2x its pooled latents decode within twice its reconstruction error (an
// autoencoder trained for reconstruction alone was at 11.6 times), and at
// factor 1 the measurement is the reconstruction itself.
func TestPoolingConsistency(t *testing.T) {
	img := fashionTestImages(t, 40)
	orig := append([]float32(nil), img.Float32s()...)
	ctx := context.Background()
	for _, name := range ldmVariants {
		t.Run(name, func(t *testing.T) {
			m := load(t, ldmDir(name))
			v := openVAE(t, m, DecodeOptions{Tiling: TileNever})

			one, err := v.PoolingConsistency(ctx, img, 1)
			require.NoError(t, err)
			require.Equal(t, one.Reconstruction, one.Decoded)
			require.Zero(t, one.Latent)
			require.Equal(t, 40, one.Images)

			two, err := v.PoolingConsistency(ctx, img, 2)
			require.NoError(t, err)
			t.Log(two)
			require.Equal(t, one.Reconstruction, two.Reconstruction)
			require.Greater(t, two.Reconstruction, 0.0)
			require.Less(t, two.Reconstruction, 0.02)
			require.Less(t, two.Ratio(), 2.0)
			require.Less(t, two.Latent, 0.01)
			require.Equal(t, orig, img.Float32s(), "images modified")
		})
	}
}

func TestPoolingConsistencyErrors(t *testing.T) {
	m := load(t, ldmDir(ldmVariants[0]))
	v := openVAE(t, m, DecodeOptions{Tiling: TileNever})
	ctx := context.Background()
	good := tensor.New(tensor.WithShape(1, 3, 32, 32), tensor.Of(tensor.Float32))
	for _, k := range []int{0, -2, 17} {
		_, err := v.PoolingConsistency(ctx, good, k)
		require.Error(t, err, "factor %d", k)
	}
	_, err := v.PoolingConsistency(ctx, nil, 2)
	require.Error(t, err)
	_, err = v.PoolingConsistency(ctx, tensor.New(tensor.WithShape(1, 3, 30, 32), tensor.Of(tensor.Float32)), 2)
	require.Error(t, err)
	_, err = v.PoolingConsistency(ctx, tensor.New(tensor.WithShape(3, 32, 32), tensor.Of(tensor.Float32)), 2)
	require.Error(t, err)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = v.PoolingConsistency(cancelled, good, 2)
	require.ErrorIs(t, err, context.Canceled)
}
