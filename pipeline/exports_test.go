package pipeline

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo/schedule"
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

// TestTrainingSize checks where Info.SampleSize comes from: configs when
// the folder has them, an inference for an SD 2.x 768-v folder without
// them (a 1024-wide text encoder with v_prediction: 768), the option, and
// otherwise 512 with a warning.
func TestTrainingSize(t *testing.T) {
	cases := []struct {
		name   string
		dir    string
		opts   []Option
		size   int
		source string
		warn   bool
	}{
		{"SD 2.x 768-v, no configs", tinyDir("sd2v"), nil, 768, "inferred: a 1024-wide text encoder with v_prediction", false},
		{"SD 1.x, no configs", tinyDir("fp32"), nil, 512, "default", true},
		{"optimum folder with configs", tinyDir("fp16"), nil, 512, "unet/config.json", false},
		{"option over the inference", tinyDir("sd2v"), []Option{WithSampleSize(512)}, 512, "option", false},
		{"option instead of the default", tinyDir("fp32"), []Option{WithSampleSize(256)}, 256, "option", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var log strings.Builder
			opts := append([]Option{WithLogger(slog.New(slog.NewTextHandler(&log, nil)))}, c.opts...)
			m := load(t, c.dir, opts...)
			info := m.Info()
			require.Equal(t, c.size, info.SampleSize)
			require.True(t, strings.HasPrefix(info.SampleSizeSource, c.source), "source %q", info.SampleSizeSource)
			if c.warn {
				require.Contains(t, log.String(), "assuming 512")
			} else {
				require.Empty(t, log.String())
			}
			// The default request samples at the training size, and
			// Upsample Guidance's factors follow from it.
			p := mustResolve(t, m, Request{})
			require.Equal(t, []int{c.size, c.size}, []int{p.Width, p.Height})
			p = mustResolve(t, m, Request{Width: 2 * c.size, Height: 2 * c.size, Steps: 4})
			require.Equal(t, []int{2, 2}, factorsOf(p))
		})
	}
}

// TestSD2VFolderSamples runs the SD 2.x 768-v-shaped folder end to end at
// twice its inferred training size with Upsample Guidance, which then
// reads the UNet's outputs as velocities.
func TestSD2VFolderSamples(t *testing.T) {
	m := load(t, tinyDir("sd2v"), WithSampleSize(64))
	require.Equal(t, schedule.PredictV, m.Info().Scheduler.PredictionType)
	require.Equal(t, 1024, m.Info().HiddenSize)
	res, err := m.Generate(context.Background(), Request{Prompt: "a lighthouse", Width: 128, Height: 128, Steps: 3, Seed: 1})
	require.NoError(t, err)
	require.Equal(t, []int{2, 2}, res.Settings.Upsample.Factors)
	require.Equal(t, tensor.Shape{1, 3, 128, 128}, res.Pixels.Shape())
}

// TestInferSampleSize covers each rule of inferSampleSize on synthetic
// model descriptions (the tiny folders have dynamic UNet graphs).
func TestInferSampleSize(t *testing.T) {
	dims := func(h, w int64) []int64 { return []int64{-1, 4, h, w} }
	cases := []struct {
		name        string
		unet        []int64
		hidden      int
		pred        schedule.PredictionType
		source      string
		size        int
		wantWarning bool
	}{
		{"fixed 64x64 UNet graph", dims(64, 64), 768, schedule.PredictEpsilon, UNetPath, 512, false},
		{"fixed 96x96 UNet graph", dims(96, 96), 1024, schedule.PredictEpsilon, UNetPath, 768, false},
		{"non-square fixed graph: not a training size", dims(64, 96), 768, schedule.PredictEpsilon, "default", 512, true},
		{"SD 2.x 768-v", dims(-1, -1), 1024, schedule.PredictV, "inferred:", 768, false},
		{"SD 2.x base (epsilon): not told", dims(-1, -1), 1024, schedule.PredictEpsilon, "default", 512, true},
		{"SD 1.x with v_prediction: not told", dims(-1, -1), 768, schedule.PredictV, "default", 512, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := &Model{}
			m.info.VAEScale, m.info.HiddenSize = 8, c.hidden
			m.info.Scheduler.PredictionType = c.pred
			m.info.UNet.Sample.Dims = c.unet
			m.info.SampleSize = DefaultSampleSize
			var log strings.Builder
			m.inferSampleSize(&loadConfig{logger: slog.New(slog.NewTextHandler(&log, nil))})
			require.Equal(t, c.size, m.info.SampleSize)
			require.True(t, strings.HasPrefix(m.info.SampleSizeSource, c.source), m.info.SampleSizeSource)
			require.Equal(t, c.wantWarning, strings.Contains(log.String(), "assuming 512"))
		})
	}
	m := &Model{}
	m.info.SampleSize, m.info.SampleSizeSource = 640, "unet/config.json"
	m.inferSampleSize(&loadConfig{})
	require.Equal(t, 640, m.info.SampleSize, "a config's size stands")
}
