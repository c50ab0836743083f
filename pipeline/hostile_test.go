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
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/internal/ortest"
	"github.com/ugo-diffusion/ugo/onnx"
	"github.com/ugo-diffusion/ugo/schedule"
)

// hostileConfigs are configuration files a corrupted or hostile model
// folder can hold, keyed by a name; each replaces one file of the tiny
// fp16 folder.
var hostileConfigs = []struct {
	name, file, content string
}{
	{"unet sample_size 0", "unet/config.json", `{"sample_size": 0}`},
	{"unet sample_size 4 with a huge VAE scale", "unet/config.json", `{"sample_size": 4}`},
	{"unet sample_size 2^61", "unet/config.json", `{"sample_size": 2305843009213693952}`},
	{"unet sample_size -64", "unet/config.json", `{"sample_size": -64}`},
	{"unet sample_size 1e300", "unet/config.json", `{"sample_size": 1e300}`},
	{"unet sample_size string", "unet/config.json", `{"sample_size": "64"}`},
	{"unet sample_size list", "unet/config.json", `{"sample_size": [64, 64]}`},
	{"unet 9 block_out_channels", "unet/config.json", `{"block_out_channels": [1,1,1,1,1,1,1,1,1]}`},
	{"unet in_channels -4", "unet/config.json", `{"in_channels": -4}`},
	{"unet not an object", "unet/config.json", `[1, 2]`},
	{"unet empty", "unet/config.json", ``},
	{"unet null", "unet/config.json", `null`},
	{"vae sample_size 4", "vae_decoder/config.json", `{"sample_size": 4}`},
	{"vae sample_size 2^61", "vae_decoder/config.json", `{"sample_size": 2305843009213693952, "block_out_channels": [1]}`},
	{"vae sample_size -8", "vae_decoder/config.json", `{"sample_size": -8}`},
	{"vae latent_channels 2^40", "vae_decoder/config.json", `{"latent_channels": 1099511627776}`},
	{"vae latent_channels -1", "vae_decoder/config.json", `{"latent_channels": -1}`},
	{"vae 8 block_out_channels", "vae_decoder/config.json", `{"block_out_channels": [1,1,1,1,1,1,1,1]}`},
	{"vae 64 block_out_channels", "vae_decoder/config.json", `{"block_out_channels": [` + strings.Repeat("1,", 63) + `1]}`},
	{"vae scaling 1e300", "vae_decoder/config.json", `{"scaling_factor": 1e300}`},
	{"vae scaling -0.18", "vae_decoder/config.json", `{"scaling_factor": -0.18}`},
	{"vae scaling string", "vae_decoder/config.json", `{"scaling_factor": "0.18"}`},
	{"scheduler 2^40 steps", SchedulerConfigPath, `{"num_train_timesteps": 1099511627776}`},
	{"scheduler negative steps", SchedulerConfigPath, `{"num_train_timesteps": -1}`},
	{"scheduler NaN-ish beta", SchedulerConfigPath, `{"beta_start": 1e400}`},
	{"scheduler beta_end 2", SchedulerConfigPath, `{"beta_end": 2, "beta_schedule": "linear"}`},
	{"scheduler zero SNR epsilon", SchedulerConfigPath, `{"rescale_betas_zero_snr": true, "timestep_spacing": "trailing", "prediction_type": "epsilon", "clip_sample": false}`},
	{"scheduler offset 10^6", SchedulerConfigPath, `{"steps_offset": 1000000}`},
	{"scheduler not json", SchedulerConfigPath, `{"beta_start": `},
	{"text config hidden_size -1", "text_encoder/config.json", `{"hidden_size": -1}`},
	{"vocab empty", "tokenizer/vocab.json", ``},
	{"vocab not an object", "tokenizer/vocab.json", `[]`},
	{"merges empty", "tokenizer/merges.txt", ``},
	{"tokenizer config max length -1", "tokenizer/tokenizer_config.json", `{"model_max_length": -1}`},
	{"tokenizer config max length 2^40", "tokenizer/tokenizer_config.json", `{"model_max_length": 1099511627776}`},
	{"unet model empty", UNetPath, ``},
	{"unet model truncated", UNetPath, "\x08\x07\x12\x04"},
	{"vae model garbage", VAEDecoderPath, strings.Repeat("\xff", 64)},
	{"text model empty", TextEncoderPath, ``},
}

// TestHostileModelFolders loads folders with one file replaced by a hostile
// one. Each either fails to load with an error, or loads and then plans and
// generates at its own sample size without panicking and without a
// non-finite image; none may hang or exhaust memory (sizes and counts are
// bounded before anything is allocated).
func TestHostileModelFolders(t *testing.T) {
	ortest.Require(t)
	base := copyDir(t, tinyDir("fp16"))
	loaded := 0
	for _, c := range hostileConfigs {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "m")
			require.NoError(t, os.CopyFS(dir, os.DirFS(base)))
			p := filepath.Join(dir, c.file)
			require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
			require.NoError(t, os.WriteFile(p, []byte(c.content), 0o644))
			m, err := Load(dir, WithONNXOptions(onnx.WithThreads(1, 1)))
			if err != nil {
				require.NotContains(t, err.Error(), "%!")
				return
			}
			defer m.Close()
			loaded++
			info := m.Info()
			require.True(t, info.SampleSize >= info.VAEScale && info.SampleSize%info.VAEScale == 0 && info.SampleSize <= MaxSampleSize, "sample size %d", info.SampleSize)
			req := Request{Prompt: "a cat", Steps: 2, Width: 64, Height: 64, Upsample: &guidance.UpsampleOptions{}}
			if _, err := m.Resolve(req); err != nil {
				return
			}
			res, err := m.Generate(context.Background(), req)
			if err != nil {
				require.NotContains(t, err.Error(), "%!")
				return
			}
			require.Equal(t, -1, ugo.FirstNonFinite(res.Latents.Float32s()), "non-finite latents with a nil error")
			require.Equal(t, -1, ugo.FirstNonFinite(res.Pixels.Float32s()), "non-finite pixels with a nil error")
		})
	}
	t.Logf("%d hostile folders, %d loaded", len(hostileConfigs), loaded)
}

// TestHostileFolderShapes: directories where files should be, files where
// folders should be, an empty folder.
func TestHostileFolderShapes(t *testing.T) {
	ortest.Require(t)
	for _, c := range []struct {
		name   string
		change func(dir string) error
	}{
		{"unet model is a directory", func(dir string) error {
			p := filepath.Join(dir, UNetPath)
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.Mkdir(p, 0o755)
		}},
		{"unet config is a directory", func(dir string) error {
			p := filepath.Join(dir, "unet", "config.json")
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.Mkdir(p, 0o755)
		}},
		{"empty folder", func(dir string) error { return os.RemoveAll(dir) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := copyDir(t, tinyDir("fp16"))
			require.NoError(t, c.change(dir))
			if c.name == "empty folder" {
				require.NoError(t, os.Mkdir(dir, 0o755))
			}
			m, err := Load(dir)
			if err == nil {
				m.Close()
			}
			require.Error(t, err)
			require.NotContains(t, err.Error(), "%!")
		})
	}
	_, err := Load(filepath.Join(tinyDir("fp16"), "unet", "config.json"))
	require.Error(t, err, "a file as the folder")
}

// TestResolveRefusesWhatItCannotRun: sizes the UNet's block structure cannot
// take, and requests beyond ugo.MemoryLimit, are refused by Resolve with typed
// errors before any model runs.
func TestResolveRefusesWhatItCannotRun(t *testing.T) {
	dir := copyDir(t, tinyDir("fp16"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "unet", "config.json"),
		[]byte(`{"sample_size": 64, "in_channels": 4, "block_out_channels": [32, 64, 64, 64]}`), 0o644))
	m := load(t, dir)
	require.Equal(t, 8, m.Info().LatentMultiple)
	var se *ugo.ShapeError
	_, err := m.Resolve(Request{Width: 72, Height: 64})
	require.ErrorAs(t, err, &se, "a 9-pixel-wide latent with three downsamplings")
	_, err = m.Resolve(Request{Width: 128, Height: 128})
	require.NoError(t, err)
	_, err = m.Resolve(Request{Width: 192, Height: 192, Upsample: &guidance.UpsampleOptions{Theta: 1, Eta: 1, Factors: []int{3, 3}}})
	require.NoError(t, err, "24x24 latents, 8x8 in the low-resolution branch")
	_, err = m.Resolve(Request{Width: 192, Height: 192, Upsample: &guidance.UpsampleOptions{Theta: 1, Eta: 1, Factors: []int{2, 2}}})
	require.ErrorAs(t, err, &se, "24x24 latents, 12x12 in the low-resolution branch")
	for _, req := range []Request{
		{GuidanceScale: new(1e39)}, {GuidanceScale: new(math.Inf(-1))}, {DDIMEta: math.NaN()}, {DDIMEta: -1},
		{Upsample: &guidance.UpsampleOptions{Theta: 1e39, Eta: 1}, Width: 128, Height: 128},
		{Upsample: &guidance.UpsampleOptions{Theta: 1, Eta: 2}, Width: 128, Height: 128},
		{Upsample: &guidance.UpsampleOptions{Theta: 1, Eta: 1, Factors: []int{0, 2}}, Width: 128, Height: 128},
		{Upsample: &guidance.UpsampleOptions{Theta: 1, Eta: 1, Factors: []int{2}}, Width: 128, Height: 128},
		{Width: -8}, {Height: 1 << 20}, {Width: 12}, {Images: -1}, {Images: 1000}, {Steps: -1}, {Steps: 1 << 40},
		{Sampler: "bogus"}, {Decode: DecodeOptions{TileSize: -1}},
	} {
		if _, err := m.Resolve(req); err == nil {
			t.Errorf("Resolve(%+v) accepted", req)
		}
	}
	prev := ugo.SetMemoryLimit(64 << 20)
	defer ugo.SetMemoryLimit(prev)
	_, err = m.Resolve(Request{Width: 4096, Height: 4096, Images: 4})
	var me *ugo.MemoryError
	require.ErrorAs(t, err, &me)
	require.True(t, errors.Is(err, ugo.ErrTooLarge))
	require.Contains(t, err.Error(), "4 4096x4096 images would need")
}

// FuzzReadConfigs fuzzes the optional config.json files of a model folder
// and a request size: readConfigs either refuses them or gives sizes that
// Resolve then handles without a panic.
func FuzzReadConfigs(f *testing.F) {
	f.Add([]byte(`{"sample_size": 64, "in_channels": 4}`), []byte(`{"scaling_factor": 0.18215, "block_out_channels": [1,2,3,4]}`), 512, 512)
	f.Add([]byte(`{"sample_size": 4}`), []byte(`{"sample_size": 4}`), 0, 0)
	f.Add([]byte(`{"sample_size": 2305843009213693952}`), []byte(`{}`), 1024, 1024)
	f.Add([]byte(`{"block_out_channels": [1,1,1,1]}`), []byte(`{"latent_channels": 1099511627776}`), 72, 64)
	f.Add([]byte(`{}`), []byte(`{"block_out_channels": [1], "sample_size": 1}`), 8, 8)
	for _, c := range hostileConfigs {
		if c.file == "unet/config.json" {
			f.Add([]byte(c.content), []byte(`{}`), 64, 64)
		} else if c.file == "vae_decoder/config.json" {
			f.Add([]byte(`{}`), []byte(c.content), 64, 64)
		}
	}
	sc := schedule.DefaultConfig()
	sched, err := sc.Schedule()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, unetCfg, vaeCfg []byte, width, height int) {
		dir := t.TempDir()
		for rel, data := range map[string][]byte{"unet/config.json": unetCfg, "vae_decoder/config.json": vaeCfg} {
			if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(rel)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, rel), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		m := &Model{sched: sched}
		m.info.Scheduler = sc
		if err := m.readConfigs(dir, &loadConfig{}); err != nil {
			return
		}
		info := &m.info
		if info.SampleSize < info.VAEScale || info.SampleSize%info.VAEScale != 0 || info.SampleSize > MaxSampleSize ||
			info.LatentChannels < 1 || info.LatentChannels > MaxLatentChannels || !(info.ScalingFactor > 0) || info.LatentMultiple < 1 {
			t.Fatalf("readConfigs accepted %+v", *info)
		}
		info.UNet = onnx.ModelInfo{
			Sample:          onnx.TensorInfo{Name: "sample", Dims: []int64{-1, int64(info.LatentChannels), -1, -1}},
			SpatialMultiple: info.LatentMultiple,
		}
		// Resolve must refuse or resolve any size, and never plan more than
		// the memory limit.
		p, err := m.Resolve(Request{Width: width, Height: height, Steps: 2})
		if err != nil {
			return
		}
		if need := requestBytes(p.Latent, p.Width, p.Height); need > ugo.MemoryLimit() {
			t.Fatalf("planned %d bytes", need)
		}
	})
}

// TestNilModel: the methods of the nil *Model a failed Load returns are
// errors (or zero values), never panics.
func TestNilModel(t *testing.T) {
	var m *Model
	ctx := context.Background()
	_, err := m.Resolve(Request{})
	require.ErrorIs(t, err, ugo.ErrNilDenoiser)
	_, err = m.Generate(ctx, Request{})
	require.ErrorIs(t, err, ugo.ErrNilDenoiser)
	_, _, err = m.EncodePrompts(ctx, "a")
	require.ErrorIs(t, err, ugo.ErrNilDenoiser)
	_, err = m.Denoiser(&Settings{}, nil, nil)
	require.ErrorIs(t, err, ugo.ErrNilDenoiser)
	_, err = m.Decode(ctx, nil, DecodeOptions{})
	require.ErrorIs(t, err, ugo.ErrNilDenoiser)
	_, err = m.OpenVAE(DecodeOptions{})
	require.ErrorIs(t, err, ugo.ErrNilDenoiser)
	require.NoError(t, m.Close())
	require.Nil(t, m.Tokenizer())
	require.Nil(t, m.Schedule())
	require.Equal(t, Info{}, m.Info())
	_, err = (&Model{}).Resolve(Request{})
	require.ErrorIs(t, err, ugo.ErrNilDenoiser, "a zero Model")
	var r *Result
	_, err = r.Image(0)
	require.Error(t, err)
	require.Error(t, r.WritePNG(filepath.Join(t.TempDir(), "x.png")))
	_, err = (&Result{}).Image(0)
	require.Error(t, err)
	var v *VAE
	_, err = v.Decode(ctx, nil)
	require.Error(t, err)
	_, err = v.Encode(ctx, nil)
	require.Error(t, err)
	// A loaded model refuses hostile latents to decode.
	lm := load(t, tinyDir("fp32"))
	transposed := randLatents(1, 1, 4, 8, 6)
	require.NoError(t, transposed.T(0, 1, 3, 2))
	for _, lat := range []*tensor.Dense{nil, {}, transposed, randLatents(1, 4, 8, 8)} {
		_, err := lm.Decode(ctx, lat, DecodeOptions{})
		require.Error(t, err)
		require.NotContains(t, err.Error(), "%!")
	}
}
