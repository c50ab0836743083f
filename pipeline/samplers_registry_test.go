package pipeline

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ugo-diffusion/ugo/sampler"
	"github.com/ugo-diffusion/ugo/schedule"
)

// TestRegistrySamplers runs the samplers added through package sampler's
// name table, by short name and by diffusers class, on the tiny model
// (whose scheduler_config.json is SD 1.5's PNDM with skip_prk_steps).
func TestRegistrySamplers(t *testing.T) {
	m := load(t, tinyDir("fp32"), WithSampleSize(64))
	for _, c := range []struct {
		name  string
		calls int
		first float32
	}{
		{SamplerPNDM, 5, 751},     // leading with steps_offset 1, d_1 twice
		{"PNDMScheduler", 5, 751}, // the class name the folder names
		{SamplerUniPC, 4, 999},    // UniPC's linspace default
		{"DDIMScheduler", 4, 751}, // DDIM's leading default
		{"DPMSolverMultistepScheduler", 4, 999},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := m.Generate(context.Background(), Request{Prompt: "a lighthouse", Width: 64, Height: 64, Steps: 4, Seed: 3, Sampler: c.name})
			require.NoError(t, err)
			require.Len(t, res.Settings.Timesteps, c.calls)
			require.Equal(t, c.first, res.Settings.Timesteps[0])
			for _, v := range res.Latents.Float32s() {
				require.False(t, math.IsNaN(float64(v)) || math.IsInf(float64(v), 0))
			}
		})
	}
	_, err := m.Resolve(Request{Steps: 4, Sampler: "LMSDiscreteScheduler"})
	var ue *sampler.UnknownSamplerError
	require.True(t, errors.As(err, &ue), "err = %v", err)
	require.Contains(t, err.Error(), "unipc (UniPCMultistepScheduler)")
}

// TestSchedulerConfigKeyRefused checks that a scheduler_config.json key
// the chosen sampler reads but does not implement fails the request with
// the key's name, and that Python's -Infinity loads.
func TestSchedulerConfigKeyRefused(t *testing.T) {
	dir := copyDir(t, tinyDir("fp32"))
	cfg := filepath.Join(dir, SchedulerConfigPath)
	data, err := os.ReadFile(cfg)
	require.NoError(t, err)
	edited := strings.Replace(string(data), "{", `{"use_lu_lambdas": true, "lambda_min_clipped": -Infinity,`, 1)
	require.NoError(t, os.WriteFile(cfg, []byte(edited), 0o644))
	m := load(t, dir, WithSampleSize(64))
	_, err = m.Resolve(Request{Steps: 4, Sampler: SamplerDPMSolver})
	var fe *schedule.FieldError
	require.True(t, errors.As(err, &fe), "err = %v", err)
	require.Equal(t, "use_lu_lambdas", fe.Field)
	// DDIM does not read use_lu_lambdas, as in diffusers.
	_, err = m.Resolve(Request{Steps: 4, Sampler: SamplerDDIM})
	require.NoError(t, err)
}
