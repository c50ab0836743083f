package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/schedule"
)

// withPrediction copies a tiny model folder with its scheduler config's
// prediction_type set to pred.
func withPrediction(t *testing.T, variant string, pred schedule.PredictionType) string {
	t.Helper()
	dir := copyDir(t, tinyDir(variant))
	path := filepath.Join(dir, SchedulerConfigPath)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	cfg := strings.Replace(string(data), "{", `{"prediction_type": "`+string(pred)+`",`, 1)
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o644))
	return dir
}

// TestDenoiserGuidesThePredictionType checks that Upsample Guidance in the
// pipeline reads the UNet's output as the scheduler config's prediction
// type says: the guided Denoiser of a v_prediction folder is
// guidance.Upsample with Prediction v over the plain CFG Denoiser, and it
// differs from guiding the same outputs as noise.
func TestDenoiserGuidesThePredictionType(t *testing.T) {
	for _, pred := range []schedule.PredictionType{schedule.PredictV, schedule.PredictSample} {
		t.Run(string(pred), func(t *testing.T) {
			m := load(t, withPrediction(t, "fp32", pred), WithSampleSize(128))
			require.Equal(t, pred, m.Info().Scheduler.PredictionType)
			cond, uncond := condEmbeddings(t, m)
			p := mustResolve(t, m, Request{Width: 256, Height: 256})
			ug, err := m.Denoiser(p, cond, uncond)
			require.NoError(t, err)
			plain, err := m.Denoiser(mustResolve(t, m, Request{Width: 256, Height: 256, Upsample: &guidance.UpsampleOptions{}}), cond, uncond)
			require.NoError(t, err)
			opts := *p.Upsample
			require.Equal(t, pred, opts.Prediction, "the settings carry the model's prediction type")
			want, err := guidance.Upsample(plain, m.Schedule(), opts)
			require.NoError(t, err)
			opts.Prediction = schedule.PredictEpsilon
			asNoise, err := guidance.Upsample(plain, m.Schedule(), opts)
			require.NoError(t, err)
			ctx := context.Background()
			x := randLatents(4, 1, 4, 32, 32)
			out := func(d ugo.Denoiser) []float32 {
				dst := tensor.New(tensor.WithShape(1, 4, 32, 32), tensor.Of(tensor.Float32))
				require.NoError(t, d.PredictNoise(ctx, dst, x, []float32{700}))
				return dst.Float32s()
			}
			got := out(ug)
			require.Equal(t, out(want), got)
			require.Greater(t, maxAbsDiff(t, got, out(asNoise)), 1e-3, "guiding %s outputs as noise must give something else", pred)
		})
	}
}
