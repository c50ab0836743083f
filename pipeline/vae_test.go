package pipeline

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/onnx"
	"github.com/ugo-diffusion/ugo/upscale"
)

var _ upscale.Codec = (*VAE)(nil)

func openVAE(t *testing.T, m *Model, opts DecodeOptions) *VAE {
	t.Helper()
	v, err := m.OpenVAE(opts, onnx.WithThreads(1, 1))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, v.Close()) })
	return v
}

// Encode runs the encoder graph image by image and multiplies by the
// scaling factor; Decode is Model.Decode with the VAE's options.
func TestVAEEncodeDecode(t *testing.T) {
	for _, variant := range []string{"fp32", "fp16"} {
		t.Run(variant, func(t *testing.T) {
			m := load(t, tinyDir(variant))
			v := openVAE(t, m, DecodeOptions{Tiling: TileNever})
			ctx := context.Background()
			img := randLatents(3, 2, 3, 64, 48)
			z, err := v.Encode(ctx, img)
			require.NoError(t, err)
			require.Equal(t, tensor.Shape{2, 4, 8, 6}, z.Shape())

			g, err := onnx.OpenGraph(filepath.Join(tinyDir(variant), VAEEncoderPath), onnx.WithThreads(1, 1))
			require.NoError(t, err)
			defer g.Close()
			raw := tensor.New(tensor.WithShape(2, 4, 8, 6), tensor.Of(tensor.Float32))
			require.NoError(t, g.Run(ctx, map[string]*tensor.Dense{"sample": img}, map[string]*tensor.Dense{"latent_sample": raw}))
			f := float32(m.Info().ScalingFactor)
			want := make([]float32, len(raw.Float32s()))
			for i, r := range raw.Float32s() {
				want[i] = r * f
			}
			tol := 1e-6
			if variant == "fp16" {
				tol = 1e-3 // the batched and per-image runs round differently in float16
			}
			require.LessOrEqual(t, maxAbsDiff(t, want, z.Float32s()), tol)

			dec, err := v.Decode(ctx, z)
			require.NoError(t, err)
			direct, err := m.Decode(ctx, z, DecodeOptions{Tiling: TileNever})
			require.NoError(t, err)
			require.Equal(t, direct.Float32s(), dec.Float32s())
			require.Equal(t, tensor.Shape{2, 3, 64, 48}, dec.Shape())
		})
	}
}

func TestVAEErrors(t *testing.T) {
	m := load(t, tinyDir("fp32"))
	v := openVAE(t, m, DecodeOptions{})
	ctx := context.Background()
	for name, img := range map[string]*tensor.Dense{
		"nil":            nil,
		"rank 3":         tensor.New(tensor.WithShape(3, 64, 64), tensor.Of(tensor.Float32)),
		"four channels":  tensor.New(tensor.WithShape(1, 4, 64, 64), tensor.Of(tensor.Float32)),
		"not multiple":   tensor.New(tensor.WithShape(1, 3, 60, 64), tensor.Of(tensor.Float32)),
		"float64 pixels": tensor.New(tensor.WithShape(1, 3, 64, 64), tensor.Of(tensor.Float64)),
	} {
		_, err := v.Encode(ctx, img)
		require.Error(t, err, name)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err := v.Encode(cancelled, tensor.New(tensor.WithShape(1, 3, 64, 64), tensor.Of(tensor.Float32)))
	require.ErrorIs(t, err, context.Canceled)

	_, err = m.OpenVAE(DecodeOptions{TileSize: 1})
	require.Error(t, err, "bad decode options")

	dir := copyDir(t, tinyDir("fp32"))
	require.NoError(t, os.RemoveAll(filepath.Join(dir, "vae_encoder")))
	m2 := load(t, dir)
	_, err = m2.OpenVAE(DecodeOptions{})
	var me *MissingError
	require.True(t, errors.As(err, &me), "%v", err)
	require.Equal(t, []string{VAEEncoderPath}, me.Missing)

	var closed *VAE
	require.NoError(t, closed.Close())
	_, err = closed.Encode(ctx, nil)
	require.Error(t, err)
}

// A ScaleDiff-style refinement of tiny-model latents, 64 -> 128 pixels:
// Latent Frequency Mixing through the VAE and Structure Guidance, with the
// plan's own sampler and classifier-free-guided UNet.
func TestUpscaleWithVAE(t *testing.T) {
	m := load(t, tinyDir("fp32"))
	v := openVAE(t, m, DecodeOptions{})
	cond, uncond := condEmbeddings(t, m)
	p := mustResolve(t, m, Request{Width: 64, Height: 64, Steps: 4, Upsample: &guidance.UpsampleOptions{}})
	require.NotNil(t, p.Solver())
	model, err := m.Denoiser(p, cond, uncond)
	require.NoError(t, err)
	base := m.Info().SampleSize / m.Info().VAEScale
	s := upscale.Sampling{
		Model: model, Schedule: m.Schedule(), Solver: p.Solver(), Steps: p.Steps,
		Channels: m.Info().LatentChannels, Trained: [2]int{base, base},
		Noise: noise.TorchSeeds(5),
	}
	outs, err := upscale.Run(context.Background(), s, nil,
		upscale.Generate{Height: 8, Width: 8},
		upscale.Refine{Height: 16, Width: 16, Strength: 0.5, Codec: v, Mix: &upscale.MixOptions{}, Structure: &guidance.StructureOptions{}},
	)
	require.NoError(t, err)
	require.Equal(t, tensor.Shape{1, 4, 16, 16}, outs[1].Shape())
	img, err := v.Decode(context.Background(), outs[1])
	require.NoError(t, err)
	require.Equal(t, tensor.Shape{1, 3, 128, 128}, img.Shape())
	for _, x := range img.Float32s() {
		require.False(t, math.IsNaN(float64(x)) || math.IsInf(float64(x), 0))
	}
}
