package pipeline

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// Tiled encoding equals whole-image encoding for the tiny export, whose
// encoder (one 8x8 stride-8 convolution) sees one latent pixel's block of
// the image, and stays close to it for the trained latent model's VAE
// (3x3 convolutions at three scales and GroupNorm, whose statistics differ
// per tile).
func TestTiledEncode(t *testing.T) {
	ctx := context.Background()
	m := load(t, tinyDir("fp32"))
	img := randLatents(4, 2, 3, 512, 672)
	whole, err := openVAE(t, m, DecodeOptions{Tiling: TileNever}).Encode(ctx, img)
	require.NoError(t, err)
	before := append([]float32(nil), img.Float32s()...)
	tiled, err := openVAE(t, m, DecodeOptions{Tiling: TileAlways, TileSize: 24, Overlap: 4}).Encode(ctx, img)
	require.NoError(t, err)
	require.Equal(t, before, img.Float32s(), "images are not modified")
	require.Equal(t, []int{2, 4, 64, 84}, []int(tiled.Shape()))
	require.LessOrEqual(t, maxAbsDiff(t, whole.Float32s(), tiled.Float32s()), 1e-5)
	auto, err := openVAE(t, m, DecodeOptions{}).Encode(ctx, img)
	require.NoError(t, err)
	require.Equal(t, whole.Float32s(), auto.Float32s(), "TileAuto encodes images under MaxWholePixels whole")

	// The trained model's VAE (scale 4, trained at 128x128 images): a
	// 256x320 image (64x80 latent) in tiles of 32 latent pixels.
	lm := load(t, ldmDir("fashion_ldm_eps"))
	vs := lm.Info().VAEScale
	pic := fixedInput(0.3, 1, 3, 64*vs, 80*vs)
	lw, err := openVAE(t, lm, DecodeOptions{Tiling: TileNever}).Encode(ctx, pic)
	require.NoError(t, err)
	lt, err := openVAE(t, lm, DecodeOptions{Tiling: TileAlways, TileSize: 32, Overlap: 16}).Encode(ctx, pic)
	require.NoError(t, err)
	var sum, sq float64
	a, b := lw.Float32s(), lt.Float32s()
	for i := range a {
		d := float64(a[i] - b[i])
		sq += d * d
		sum += float64(a[i]) * float64(a[i])
	}
	rel := sq / sum
	t.Logf("trained VAE: tiled encode vs whole, relative squared error %.3g, max abs %.3g", rel, maxAbsDiff(t, a, b))
	require.Less(t, rel, 1e-2)
}
