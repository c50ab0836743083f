package pipeline

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ugo-diffusion/ugo/internal/ortest"
	"github.com/ugo-diffusion/ugo/onnx"
	"github.com/ugo-diffusion/ugo/schedule"
)

func TestLoadInfo(t *testing.T) {
	cases := []struct {
		variant       string
		scalingSource string
		timestep      onnx.DType
		sample        onnx.DType
	}{
		{"fp32", "default", onnx.Int64, onnx.Float32},
		{"fp16", "vae_decoder/config.json", onnx.Float16, onnx.Float16},
	}
	for _, c := range cases {
		t.Run(c.variant, func(t *testing.T) {
			m := load(t, tinyDir(c.variant))
			info := m.Info()
			require.Equal(t, tinyDir(c.variant), info.Dir)
			require.InDelta(t, DefaultScalingFactor, info.ScalingFactor, 1e-12)
			require.Equal(t, c.scalingSource, info.ScalingFactorSource)
			require.Equal(t, 512, info.SampleSize)
			require.Equal(t, 8, info.VAEScale)
			require.Equal(t, 4, info.LatentChannels)
			require.Equal(t, 768, info.HiddenSize)
			require.Equal(t, 77, info.SequenceLength)
			require.Equal(t, c.timestep, info.UNet.Timestep.DType)
			require.Equal(t, c.sample, info.UNet.Sample.DType)
			require.Equal(t, "encoder_hidden_states", info.UNet.Extra[0].Name)
			require.Equal(t, schedule.BetaScaledLinear, info.Scheduler.BetaSchedule)
			require.Equal(t, 1, info.Scheduler.StepsOffset)
			require.False(t, info.Scheduler.SetAlphaToOne)
			require.Equal(t, 1000, m.Schedule().Len())
			require.Equal(t, 77, m.Tokenizer().MaxLength())
			require.Equal(t, "last_hidden_state", info.TextEncoder.Outputs[0].Name)
			require.Len(t, info.TextEncoder.Outputs, 1, "only the output used is computed")
		})
	}
}

func TestLoadOptions(t *testing.T) {
	m := load(t, tinyDir("fp32"), WithScalingFactor(0.5), WithSampleSize(256))
	require.Equal(t, 0.5, m.Info().ScalingFactor)
	require.Equal(t, "option", m.Info().ScalingFactorSource)
	require.Equal(t, 256, m.Info().SampleSize)

	ortest.Require(t)
	_, err := Load(tinyDir("fp32"), WithSampleSize(100))
	require.ErrorContains(t, err, "multiple of the VAE scale")
	_, err = Load(tinyDir("fp32"), WithScalingFactor(-1))
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "scaling_factor", ce.Field)
	_, err = Load(tinyDir("fp32"), WithONNXOptions(onnx.WithCUDA(0, nil)))
	require.ErrorIs(t, err, onnx.ErrProviderUnavailable, "CUDA on the CPU-only runtime")
}

// TestLoadMissing removes each required file in turn: the error names it.
func TestLoadMissing(t *testing.T) {
	ortest.Require(t)
	cases := []struct {
		remove []string
		want   []string
	}{
		{[]string{SchedulerConfigPath}, []string{SchedulerConfigPath}},
		{[]string{TextEncoderPath}, []string{TextEncoderPath}},
		{[]string{UNetPath}, []string{UNetPath}},
		{[]string{VAEDecoderPath}, []string{VAEDecoderPath}},
		{[]string{"tokenizer/vocab.json"}, []string{"tokenizer/vocab.json (or tokenizer/tokenizer.json)"}},
		{[]string{"tokenizer/merges.txt"}, []string{"tokenizer/merges.txt (or tokenizer/tokenizer.json)"}},
		{[]string{UNetPath, VAEDecoderPath, "tokenizer"}, []string{UNetPath, VAEDecoderPath,
			"tokenizer/vocab.json (or tokenizer/tokenizer.json)", "tokenizer/merges.txt (or tokenizer/tokenizer.json)"}},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.remove, "+"), func(t *testing.T) {
			dir := copyDir(t, tinyDir("fp32"))
			for _, r := range c.remove {
				require.NoError(t, os.RemoveAll(filepath.Join(dir, r)))
			}
			_, err := Load(dir)
			var me *MissingError
			require.True(t, errors.As(err, &me), "%v", err)
			require.Equal(t, c.want, me.Missing)
			require.Equal(t, dir, me.Dir)
			for _, w := range c.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
	t.Run("weights.pb", func(t *testing.T) {
		dir := copyDir(t, tinyDir("fp32"))
		require.NoError(t, os.Remove(filepath.Join(dir, "unet", "weights.pb")))
		_, err := Load(dir)
		require.ErrorContains(t, err, "unet:")
		require.ErrorContains(t, err, "weights.pb")
	})
	t.Run("no folder", func(t *testing.T) {
		_, err := Load(filepath.Join(t.TempDir(), "nope"))
		require.ErrorIs(t, err, os.ErrNotExist)
	})
	t.Run("a file", func(t *testing.T) {
		_, err := Load(filepath.Join(tinyDir("fp32"), "model_index.json"))
		require.ErrorContains(t, err, "not a directory")
	})
	t.Run("optional parts", func(t *testing.T) {
		dir := copyDir(t, tinyDir("fp16"))
		for _, r := range []string{"vae_encoder", "model_index.json", "unet/config.json", "text_encoder/config.json"} {
			require.NoError(t, os.RemoveAll(filepath.Join(dir, r)))
		}
		m, err := Load(dir)
		require.NoError(t, err)
		require.NoError(t, m.Close())
	})
}

// TestLoadTokenizerJSON replaces vocab.json and merges.txt by an equivalent
// tokenizer.json, as optimum may write.
func TestLoadTokenizerJSON(t *testing.T) {
	ortest.Require(t)
	dir := copyDir(t, tinyDir("fp32"))
	tokDir := filepath.Join(dir, "tokenizer")
	var vocab map[string]int
	data, err := os.ReadFile(filepath.Join(tokDir, "vocab.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &vocab))
	mt, err := os.ReadFile(filepath.Join(tokDir, "merges.txt"))
	require.NoError(t, err)
	merges := strings.Split(strings.TrimSpace(string(mt)), "\n")[1:]
	tj, err := json.Marshal(map[string]any{"model": map[string]any{"type": "BPE", "end_of_word_suffix": "</w>", "vocab": vocab, "merges": merges}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(tokDir, "tokenizer.json"), tj, 0o644))
	ref := load(t, tinyDir("fp32"))
	require.NoError(t, os.Remove(filepath.Join(tokDir, "vocab.json")))
	require.NoError(t, os.Remove(filepath.Join(tokDir, "merges.txt")))
	m := load(t, dir)
	for _, p := range []string{"a photo of a cat", "A painting of a lighthouse, highly detailed!", ""} {
		a, _ := ref.Tokenizer().EncodePadded(p)
		b, _ := m.Tokenizer().EncodePadded(p)
		require.Equal(t, a, b, "%q", p)
	}
}

// TestLoadMismatch breaks one part of a folder at a time.
func TestLoadMismatch(t *testing.T) {
	ortest.Require(t)
	write := func(rel, content string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, rel)), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(dir, rel), []byte(content), 0o644))
		}
	}
	swap := func(dst, src string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			data, err := os.ReadFile(filepath.Join(dir, src))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, dst), data, 0o644))
		}
	}
	cases := []struct {
		name   string
		change func(t *testing.T, dir string)
		want   []string
	}{
		{"bad scheduler", write(SchedulerConfigPath, `{"beta_schedule": "bogus"}`), []string{SchedulerConfigPath, "beta_schedule"}},
		{"scheduler not json", write(SchedulerConfigPath, `{`), []string{SchedulerConfigPath}},
		{"vae config not json", write("vae_decoder/config.json", `[`), []string{"vae_decoder/config.json"}},
		{"8 latent channels", write("vae_decoder/config.json", `{"latent_channels": 8}`), []string{"in_channels 4 != 8 latent channels"}},
		{"8 latent channels, no unet config", func(t *testing.T, dir string) {
			write("vae_decoder/config.json", `{"latent_channels": 8}`)(t, dir)
			require.NoError(t, os.Remove(filepath.Join(dir, "unet", "config.json")))
		}, []string{"out_sample[?,4,?,?]float16 has 4 latent channels, want 8"}},
		{"inpainting unet", write("unet/config.json", `{"in_channels": 9}`), []string{"in_channels 9", "inpainting"}},
		{"zero scaling", write("vae_decoder/config.json", `{"scaling_factor": 0}`), []string{"scaling_factor = 0", "vae_decoder/config.json"}},
		{"unet is a vae", swap(UNetPath, VAEDecoderPath), []string{"unet:", "timestep"}},
		{"vae decoder is an encoder", swap(VAEDecoderPath, "vae_encoder/model.onnx"), []string{"vae decoder:", `no output "sample"`}},
		{"text encoder is a unet", swap(TextEncoderPath, "vae_decoder/model.onnx"), []string{"text encoder:", `no output "last_hidden_state"`}},
		{"corrupt unet", write(UNetPath, "not a model"), []string{"unet:", "not a loadable ONNX model"}},
		{"bad merges", write("tokenizer/merges.txt", "#version: 0.2\na b c\n"), []string{"merges.txt"}},
		{"special token missing", write("tokenizer/special_tokens_map.json", `{"pad_token": "<pad>"}`), []string{`"<pad>"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyDir(t, tinyDir("fp16"))
			c.change(t, dir)
			m, err := Load(dir)
			if err == nil {
				m.Close()
			}
			require.Error(t, err)
			for _, w := range c.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}
