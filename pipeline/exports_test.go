package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestVAEEncoderLatentParameters checks an optimum >= 1.23 VAE encoder,
// whose output latent_parameters stacks the posterior's mean and
// log-variance: Encode returns the mean, which for the fixture (built by
// tools/testmodels/gen.py from the fp32 tiny model's encoder weights) is
// that encoder's latent_sample.
func TestVAEEncoderLatentParameters(t *testing.T) {
	dir := copyDir(t, tinyDir("fp32"))
	params, err := os.ReadFile(filepath.Join("..", "testdata", "onnx", "vae_encoder_params.onnx"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, VAEEncoderPath), params, 0o644))
	ctx := context.Background()
	img := randLatents(5, 2, 3, 64, 48)

	got, err := openVAE(t, load(t, dir), DecodeOptions{}).Encode(ctx, img)
	require.NoError(t, err)
	want, err := openVAE(t, load(t, tinyDir("fp32")), DecodeOptions{}).Encode(ctx, img)
	require.NoError(t, err)
	require.Equal(t, want.Shape(), got.Shape())
	require.LessOrEqual(t, maxAbsDiff(t, want.Float32s(), got.Float32s()), 1e-6)
}
