package pipeline

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/onnx"
	"github.com/ugo-diffusion/ugo/schedule"
)

func TestResolve(t *testing.T) {
	m := load(t, tinyDir("fp32"))
	off := &guidance.UpsampleOptions{}
	cases := []struct {
		name    string
		req     Request
		latent  []int
		factors []int
		guided  int
		tiles   int
		cfg     bool
	}{
		{"defaults: 512, no UG", Request{}, []int{1, 4, 64, 64}, nil, 0, 1, true},
		{"1024 square: 2x2", Request{Width: 1024, Height: 1024}, []int{1, 4, 128, 128}, []int{2, 2}, 30, 1, true},
		{"1536x1024: 2x3", Request{Width: 1536, Height: 1024}, []int{1, 4, 128, 192}, []int{2, 3}, 30, 12, true},
		{"2048 square: 4x4, tiled", Request{Width: 2048, Height: 2048}, []int{1, 4, 256, 256}, []int{4, 4}, 30, 25, true},
		{"768: below 2x", Request{Width: 768, Height: 768}, []int{1, 4, 96, 96}, nil, 0, 1, true},
		{"1280x1024: 2x2 (floor)", Request{Width: 1280, Height: 1024}, []int{1, 4, 128, 160}, []int{2, 2}, 30, 9, true},
		{"explicit 1x2 panorama", Request{Width: 1024, Height: 512, Upsample: &guidance.UpsampleOptions{Factors: []int{1, 2}, Theta: 1, Eta: 1}}, []int{1, 4, 64, 128}, []int{1, 2}, 50, 1, true},
		{"UG off", Request{Width: 1024, Height: 1024, Upsample: off}, []int{1, 4, 128, 128}, nil, 0, 1, true},
		{"eta 0.3, 10 steps", Request{Width: 1024, Height: 1024, Steps: 10, Upsample: &guidance.UpsampleOptions{Theta: 1, Eta: 0.3}}, []int{1, 4, 128, 128}, []int{2, 2}, 3, 1, true},
		{"no CFG at scale 1", Request{GuidanceScale: new(1.0), Images: 3}, []int{3, 4, 64, 64}, nil, 0, 1, false},
		{"no CFG at scale 0, as diffusers' guidance_scale=0.0", Request{GuidanceScale: new(0.0)}, []int{1, 4, 64, 64}, nil, 0, 1, false},
		{"no CFG at a negative scale", Request{GuidanceScale: new(-2.0)}, []int{1, 4, 64, 64}, nil, 0, 1, false},
		{"never tile", Request{Width: 2048, Height: 2048, Decode: DecodeOptions{Tiling: TileNever}}, []int{1, 4, 256, 256}, []int{4, 4}, 30, 1, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := m.Resolve(c.req)
			require.NoError(t, err)
			require.Equal(t, c.latent, p.Latent)
			require.Equal(t, c.factors, factorsOf(p))
			require.Equal(t, c.guided, p.GuidedSteps)
			require.Equal(t, c.tiles, p.TilesPerImage)
			require.Equal(t, c.cfg, p.CFG)
			steps := c.req.Steps
			if steps == 0 {
				steps = DefaultSteps
			}
			require.Len(t, p.Timesteps, steps)
			// The guided steps are those with t >= (1-eta)*T.
			if p.Upsample != nil {
				n := 0
				for _, ts := range p.Timesteps {
					if float64(ts) >= (1-p.Upsample.Eta)*1000 {
						n++
					}
				}
				require.Equal(t, n, p.GuidedSteps)
			}
		})
	}
	require.Equal(t, []float32{981, 961, 941}, mustResolve(t, m, Request{}).Timesteps[:3], "SD's leading spacing with steps_offset 1")
	p := mustResolve(t, m, Request{Width: 1024, Height: 1024})
	require.Equal(t, 1.2, p.Upsample.Theta)
	require.Equal(t, 0.6, p.Upsample.Eta)
	require.Equal(t, schedule.Continuous, p.Upsample.TimeMatching)
	require.Equal(t, DefaultGuidanceScale, p.GuidanceScale, "nil GuidanceScale means diffusers' default")
	require.Equal(t, SamplerDDIM, p.Sampler)
	require.Zero(t, mustResolve(t, m, Request{GuidanceScale: new(0.0)}).GuidanceScale, "0 is a scale, not a request for the default")

	// The request's other guidance options reach the settings; the
	// factors are resolved and the prediction type is the model's.
	req := &guidance.UpsampleOptions{Theta: 1, Eta: 1, Sequential: true, TimeMatching: schedule.Nearest}
	p = mustResolve(t, m, Request{Width: 1536, Height: 1024, Upsample: req})
	require.Equal(t, guidance.UpsampleOptions{Factors: []int{2, 3}, Theta: 1, Eta: 1, Sequential: true,
		TimeMatching: schedule.Nearest, Prediction: schedule.PredictEpsilon}, *p.Upsample)
	require.Nil(t, req.Factors, "the request is not modified")
}

func mustResolve(t *testing.T, m *Model, req Request) *Settings {
	t.Helper()
	p, err := m.Resolve(req)
	require.NoError(t, err)
	return p
}

// factorsOf returns the Upsample Guidance factors of p, nil when it is off.
func factorsOf(p *Settings) []int {
	if p.Upsample == nil {
		return nil
	}
	return p.Upsample.Factors
}

func TestResolveErrors(t *testing.T) {
	m := load(t, tinyDir("fp32"))
	cases := []struct {
		name string
		req  Request
		want string
	}{
		{"width", Request{Width: 1020}, "width 1020 is not a positive multiple of 8"},
		{"height", Request{Height: -8}, "height -8"},
		{"images", Request{Images: -1}, "Images is -1"},
		{"sampler", Request{Sampler: "heun"}, `unknown sampler "heun"`},
		{"ddim eta", Request{DDIMEta: -1}, "DDIM eta"},
		{"steps", Request{Steps: 1001}, "1001 steps"},
		{"scale", Request{GuidanceScale: new(math.NaN())}, "not finite"},
		{"factors length", Request{Width: 1024, Upsample: &guidance.UpsampleOptions{Theta: 1, Factors: []int{2}}}, "want two"},
		{"factor divides", Request{Width: 1024, Height: 1024, Upsample: &guidance.UpsampleOptions{Theta: 1, Factors: []int{3, 2}}}, "factor 3 does not divide the latent height 128"},
		{"factor zero", Request{Width: 1024, Upsample: &guidance.UpsampleOptions{Theta: 1, Factors: []int{0, 2}}}, "factors [0 2]"},
		{"ug eta", Request{Width: 1024, Height: 1024, Upsample: &guidance.UpsampleOptions{Theta: 1, Eta: 2}}, "Eta is 2"},
		{"ug eta, theta 0", Request{Width: 1024, Height: 1024, Upsample: &guidance.UpsampleOptions{Eta: -1}}, "Eta is -1"},
		{"ug prediction", Request{Width: 1024, Height: 1024, Upsample: &guidance.UpsampleOptions{Theta: 1, Eta: 1, Prediction: "v_prediction"}}, `Prediction "v_prediction", but the model predicts "epsilon"`},
		{"ug theta", Request{Width: 1024, Height: 1024, Upsample: &guidance.UpsampleOptions{Theta: math.Inf(1), Eta: 1}}, "Theta is +Inf"},
		{"tile", Request{Decode: DecodeOptions{TileSize: 16, Overlap: 9}}, "overlap <= size/2"},
		{"tiling mode", Request{Decode: DecodeOptions{Tiling: 7}}, "unknown tiling mode"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := m.Resolve(c.req)
			require.ErrorContains(t, err, c.want)
			_, err = m.Generate(context.Background(), c.req)
			require.ErrorContains(t, err, c.want, "Generate checks the settings before running anything")
		})
	}
}

// condEmbeddings returns two different [1,77,768] embeddings.
func condEmbeddings(t *testing.T, m *Model) (cond, uncond *tensor.Dense) {
	emb, _, err := m.EncodePrompts(context.Background(), "a photo of a cat", "blurry, low quality")
	require.NoError(t, err)
	one := 77 * 768
	cond = tensor.New(tensor.WithShape(1, 77, 768), tensor.WithBacking(slices.Clone(emb.Float32s()[:one])))
	uncond = tensor.New(tensor.WithShape(1, 77, 768), tensor.WithBacking(slices.Clone(emb.Float32s()[one:])))
	return cond, uncond
}

func randLatents(seed uint64, shape ...int) *tensor.Dense {
	x, _ := noise.NewTensor(noise.NewPCG(seed), shape...)
	return x
}

// TestEncodePrompts checks the embeddings against the text encoder run
// directly on the tokenizer's ids, and the truncation flag.
func TestEncodePrompts(t *testing.T) {
	for _, v := range []string{"fp32", "fp16"} {
		t.Run(v, func(t *testing.T) {
			m := load(t, tinyDir(v))
			long := ""
			for range 80 {
				long += "cat "
			}
			prompts := []string{"a photo of a cat", "", long, "a photo of a cat"}
			emb, trunc, err := m.EncodePrompts(context.Background(), prompts...)
			require.NoError(t, err)
			require.Equal(t, []int{4, 77, 768}, []int(emb.Shape()))
			require.Equal(t, []bool{false, false, true, false}, trunc)
			g, err := onnx.OpenGraph(filepath.Join(tinyDir(v), TextEncoderPath), onnx.WithOutputs("last_hidden_state"))
			require.NoError(t, err)
			defer g.Close()
			e := emb.Float32s()
			row := 77 * 768
			for i, p := range prompts {
				ids, _ := m.Tokenizer().EncodePadded(p)
				out := tensor.New(tensor.WithShape(1, 77, 768), tensor.Of(tensor.Float32))
				require.NoError(t, g.Run(context.Background(),
					map[string]*tensor.Dense{"input_ids": tensor.New(tensor.WithShape(1, 77), tensor.WithBacking(ids))},
					map[string]*tensor.Dense{"last_hidden_state": out}))
				require.LessOrEqual(t, maxAbsDiff(t, out.Float32s(), e[i*row:(i+1)*row]), 1e-5, "prompt %d", i)
			}
			require.Equal(t, e[:row], e[3*row:], "same prompt, same embedding")
			require.NotEqual(t, e[:row], e[row:2*row])
			_, _, err = m.EncodePrompts(context.Background())
			require.ErrorContains(t, err, "no prompts")
		})
	}
}

// TestCFGArithmetic compares the pipeline's denoiser with the UNet run
// directly on each embedding: eps_u + s*(eps_c - eps_u).
func TestCFGArithmetic(t *testing.T) {
	m := load(t, tinyDir("fp32"))
	cond, uncond := condEmbeddings(t, m)
	raw, err := onnx.Open(filepath.Join(tinyDir("fp32"), UNetPath), onnx.WithThreads(1, 1))
	require.NoError(t, err)
	defer raw.Close()
	rc, err := raw.With("encoder_hidden_states", cond)
	require.NoError(t, err)
	ru, err := raw.With("encoder_hidden_states", uncond)
	require.NoError(t, err)

	ctx := context.Background()
	x := randLatents(1, 2, 4, 32, 24)
	ec, eu := tensor.New(tensor.WithShape(2, 4, 32, 24), tensor.Of(tensor.Float32)), tensor.New(tensor.WithShape(2, 4, 32, 24), tensor.Of(tensor.Float32))
	ts := []float32{500}
	require.NoError(t, rc.PredictNoise(ctx, ec, x, ts))
	require.NoError(t, ru.PredictNoise(ctx, eu, x, ts))
	require.Greater(t, maxAbsDiff(t, ec.Float32s(), eu.Float32s()), 1e-3, "the embeddings must matter")

	for _, scale := range []float64{7.5, 3, 1, 0.5, 0} {
		p := mustResolve(t, m, Request{Width: 192, Height: 256, GuidanceScale: &scale, Images: 2, Upsample: &guidance.UpsampleOptions{}})
		d, err := m.Denoiser(p, cond, uncond)
		require.NoError(t, err)
		got := tensor.New(tensor.WithShape(2, 4, 32, 24), tensor.Of(tensor.Float32))
		require.NoError(t, d.PredictNoise(ctx, got, x, ts))
		want := make([]float32, len(got.Float32s()))
		for i := range want {
			want[i] = eu.Float32s()[i] + float32(scale)*(ec.Float32s()[i]-eu.Float32s()[i])
		}
		if scale <= 1 {
			want = ec.Float32s() // diffusers runs the conditional branch alone
		}
		require.LessOrEqual(t, maxAbsDiff(t, got.Float32s(), want), 2e-5, "scale %v", scale)
	}
}

// call records one model call seen below Upsample Guidance.
type call struct {
	shape []int
	t     float32
}

type recorder struct {
	mu    sync.Mutex
	calls []call
}

func (r *recorder) wrap(d ugo.Denoiser) ugo.Denoiser {
	return ugo.DenoiserFunc(func(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
		r.mu.Lock()
		r.calls = append(r.calls, call{shape: slices.Clone([]int(x.Shape())), t: t[0]})
		r.mu.Unlock()
		return d.PredictNoise(ctx, dst, x, t)
	})
}

// TestUpsampleWindow runs whole generations and checks which steps made a
// low-resolution call: exactly those with t >= (1-eta)*T, at the
// SNR-matched (smaller) time, on the latent divided by the factors.
func TestUpsampleWindow(t *testing.T) {
	cases := []struct {
		name    string
		w, h    int
		ug      *guidance.UpsampleOptions
		factors []int
	}{
		{"default 2x2", 256, 256, nil, []int{2, 2}},
		{"3x2, eta 0.3", 384, 256, &guidance.UpsampleOptions{Theta: 1, Eta: 0.3}, []int{2, 3}},
		{"1x2 panorama, eta 1, nearest", 256, 128, &guidance.UpsampleOptions{Factors: []int{1, 2}, Theta: 1, Eta: 1, TimeMatching: schedule.Nearest}, []int{1, 2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := load(t, tinyDir("fp32"), WithSampleSize(128))
			rec := &recorder{}
			m.hook = rec.wrap
			var progress []Progress
			res, err := m.Generate(context.Background(), Request{Prompt: "a cat", Width: c.w, Height: c.h, Steps: 8, Seed: 3,
				Upsample: c.ug, Progress: func(p Progress) error { progress = append(progress, p); return nil }})
			require.NoError(t, err)
			p := res.Settings
			require.Equal(t, c.factors, factorsOf(p))
			eta := 0.6
			if c.ug != nil {
				eta = c.ug.Eta
			}
			full := []int{1, 4, c.h / 8, c.w / 8}
			low := []int{1, 4, c.h / 8 / c.factors[0], c.w / 8 / c.factors[1]}
			byT := map[float32][]call{}
			for _, cl := range rec.calls {
				if slices.Equal(cl.shape, full) {
					byT[cl.t] = append(byT[cl.t], cl)
				}
			}
			lows := 0
			for _, cl := range rec.calls {
				if slices.Equal(cl.shape, low) {
					lows++
					require.Less(t, cl.t, float32(1000))
				}
			}
			guided := 0
			var steps []Progress
			for _, pr := range progress {
				if pr.Stage == StageDenoise {
					steps = append(steps, pr)
				}
			}
			require.Len(t, steps, 8)
			for i, ts := range p.Timesteps {
				require.Len(t, byT[ts], 1, "one full-resolution call at t=%d", ts)
				on := float64(ts) >= (1-eta)*1000
				require.Equal(t, on, steps[i].Upsampled, "step %d t=%d", i, ts)
				require.Equal(t, ts, steps[i].Step.ModelTimestep)
				if on {
					guided++
				}
			}
			require.Equal(t, guided, lows, "one low-resolution call per guided step, none elsewhere")
			require.Equal(t, guided, p.GuidedSteps)
			require.Len(t, rec.calls, len(p.Timesteps)+guided)
			require.Equal(t, Progress{Stage: StageEncode, Done: 1, Total: 1}, progress[0])
			require.Equal(t, StageDecode, progress[len(progress)-1].Stage)
		})
	}
}

// TestUpsampleChangesOnlyTheWindow compares the guided denoiser with the
// plain CFG one: bit-identical outside the window, different inside.
func TestUpsampleChangesOnlyTheWindow(t *testing.T) {
	m := load(t, tinyDir("fp32"), WithSampleSize(128))
	cond, uncond := condEmbeddings(t, m)
	ctx := context.Background()
	ug, err := m.Denoiser(mustResolve(t, m, Request{Width: 256, Height: 256}), cond, uncond)
	require.NoError(t, err)
	plain, err := m.Denoiser(mustResolve(t, m, Request{Width: 256, Height: 256, Upsample: &guidance.UpsampleOptions{}}), cond, uncond)
	require.NoError(t, err)
	x := randLatents(2, 1, 4, 32, 32)
	for _, ts := range []float32{999, 700, 400, 399, 100} {
		a, b := tensor.New(tensor.WithShape(1, 4, 32, 32), tensor.Of(tensor.Float32)), tensor.New(tensor.WithShape(1, 4, 32, 32), tensor.Of(tensor.Float32))
		require.NoError(t, ug.PredictNoise(ctx, a, x, []float32{ts}))
		require.NoError(t, plain.PredictNoise(ctx, b, x, []float32{ts}))
		if ts >= 400 {
			require.Greater(t, maxAbsDiff(t, a.Float32s(), b.Float32s()), 1e-3, "t=%v inside the window", ts)
		} else {
			require.Equal(t, b.Float32s(), a.Float32s(), "t=%v outside the window", ts)
		}
	}
}

// TestDeterminism: the same request gives the same bytes, another seed other
// ones, and Seed is noise.NewTorchCPU(Seed).
func TestDeterminism(t *testing.T) {
	for _, v := range []string{"fp32", "fp16"} {
		t.Run(v, func(t *testing.T) {
			m := load(t, tinyDir(v), WithSampleSize(64))
			req := Request{Prompt: "a lighthouse", NegativePrompt: "blurry", Width: 128, Height: 64, Steps: 4, Seed: 42, Images: 2}
			a, err := m.Generate(context.Background(), req)
			require.NoError(t, err)
			b, err := m.Generate(context.Background(), req)
			require.NoError(t, err)
			require.Equal(t, a.Pixels.Float32s(), b.Pixels.Float32s())
			require.Equal(t, a.Latents.Float32s(), b.Latents.Float32s())
			require.Equal(t, []int{2, 3, 64, 128}, []int(a.Pixels.Shape()))
			require.Equal(t, []int{1, 2}, a.Settings.Upsample.Factors)

			req.Noise = noise.NewTorchCPU(42)
			c, err := m.Generate(context.Background(), req)
			require.NoError(t, err)
			require.Equal(t, a.Pixels.Float32s(), c.Pixels.Float32s(), "Seed means NewTorchCPU(Seed)")

			req.Noise, req.Seed = nil, 43
			d, err := m.Generate(context.Background(), req)
			require.NoError(t, err)
			require.Greater(t, maxAbsDiff(t, a.Pixels.Float32s(), d.Pixels.Float32s()), 1e-3)
			for _, x := range a.Pixels.Float32s() {
				require.False(t, math.IsNaN(float64(x)) || math.IsInf(float64(x), 0))
			}
			img, err := a.Image(1)
			require.NoError(t, err)
			require.Equal(t, 128, img.Bounds().Dx())
			_, err = a.Image(2)
			require.Error(t, err)
			require.NoError(t, a.WritePNG(filepath.Join(t.TempDir(), "out.png")))
		})
	}
}

// recordingSource records the first Normal call.
type recordingSource struct {
	noise.Source
	first []float32
}

func (r *recordingSource) Normal(dst []float32) {
	r.Source.Normal(dst)
	if r.first == nil {
		r.first = slices.Clone(dst)
	}
}

// TestInitialLatents checks that the initial latents are one
// torch.randn(N, 4, H/8, W/8) call on a torch.manual_seed generator, the
// draw of diffusers' prepare_latents with a CPU generator.
func TestInitialLatents(t *testing.T) {
	m := load(t, tinyDir("fp32"), WithSampleSize(64))
	src := &recordingSource{Source: noise.NewTorchCPU(7)}
	_, err := m.Generate(context.Background(), Request{Prompt: "x", Width: 64, Height: 128, Steps: 2, Images: 3, Noise: src})
	require.NoError(t, err)
	want, err := noise.NewTensor(noise.NewTorchCPU(7), 3, 4, 16, 8)
	require.NoError(t, err)
	require.Equal(t, want.Float32s(), src.first)
}

func TestGenerateStops(t *testing.T) {
	m := load(t, tinyDir("fp32"), WithSampleSize(64))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := errors.New("stop")
	for _, c := range []struct {
		name  string
		stage Stage
		want  error
	}{{"progress error while encoding", StageEncode, stop}, {"progress error while denoising", StageDenoise, stop},
		{"progress error while decoding", StageDecode, stop}, {"cancelled", StageDenoise, context.Canceled}} {
		t.Run(c.name, func(t *testing.T) {
			_, err := m.Generate(ctx, Request{Prompt: "x", Width: 64, Height: 64, Steps: 3, Progress: func(p Progress) error {
				if p.Stage == c.stage {
					if c.want == context.Canceled {
						cancel()
						return nil
					}
					return stop
				}
				return nil
			}})
			require.ErrorIs(t, err, c.want)
		})
	}
}

// TestSamplers runs every sampler and checks the timesteps each uses with
// SD's scheduler_config.json, which names no timestep_spacing: DDIM and DDPM
// keep diffusers' leading default (with steps_offset 1), the others their
// linspace default, unless the file names a spacing.
func TestSamplers(t *testing.T) {
	m := load(t, tinyDir("fp32"), WithSampleSize(64))
	cases := []struct {
		sampler string
		first   float32
		last    float32
	}{
		{SamplerDDIM, 901, 1},
		{SamplerDDPM, 901, 1},
		{SamplerEuler, 999, 0},
		{SamplerEulerAncestral, 999, 0},
		{SamplerDPMSolver, 999, 100},
	}
	seen := map[string][]float32{}
	for _, c := range cases {
		t.Run(c.sampler, func(t *testing.T) {
			res, err := m.Generate(context.Background(), Request{Prompt: "a city at night", Width: 128, Height: 64, Steps: 10, Seed: 9, Sampler: c.sampler})
			require.NoError(t, err)
			ts := res.Settings.Timesteps
			require.Len(t, ts, 10)
			require.Equal(t, c.first, ts[0])
			require.InDelta(t, c.last, ts[9], 1)
			for _, v := range res.Latents.Float32s() {
				require.False(t, math.IsNaN(float64(v)) || math.IsInf(float64(v), 0))
			}
			seen[c.sampler] = res.Latents.Float32s()
		})
	}
	require.Greater(t, maxAbsDiff(t, seen[SamplerEuler], seen[SamplerDDIM]), 1e-3)

	dir := copyDir(t, tinyDir("fp32"))
	cfg := filepath.Join(dir, SchedulerConfigPath)
	data, err := os.ReadFile(cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cfg, []byte(strings.Replace(string(data), "{", `{"timestep_spacing": "leading",`, 1)), 0o644))
	lm := load(t, dir)
	p, err := lm.Resolve(Request{Steps: 10, Sampler: SamplerEuler})
	require.NoError(t, err)
	require.Equal(t, float32(901), p.Timesteps[0], "a spacing named in the file applies to every sampler")
}

func TestDDPMAndDDIMEta(t *testing.T) {
	m := load(t, tinyDir("fp32"), WithSampleSize(64))
	base := Request{Prompt: "a bowl of fruit", Width: 64, Height: 64, Steps: 3, Seed: 5}
	var outs [][]float32
	for _, r := range []Request{base, {Sampler: SamplerDDPM}, {DDIMEta: 1}} {
		r.Prompt, r.Width, r.Height, r.Steps, r.Seed = base.Prompt, base.Width, base.Height, base.Steps, base.Seed
		res, err := m.Generate(context.Background(), r)
		require.NoError(t, err)
		outs = append(outs, res.Latents.Float32s())
	}
	require.Greater(t, maxAbsDiff(t, outs[0], outs[1]), 1e-3, "DDPM differs from DDIM")
	require.Greater(t, maxAbsDiff(t, outs[0], outs[2]), 1e-3, "stochastic DDIM differs from deterministic DDIM")
}

// TestFloat16MatchesFloat32Graphs is a sanity check that float16 conversion
// at the boundary keeps the text encoder usable: cosine similarity of the
// two variants is meaningless (different weights), so the check is that
// float16 embeddings are the float32 graph's rounded.
func TestFloat16Boundary(t *testing.T) {
	m := load(t, tinyDir("fp16"))
	emb, _, err := m.EncodePrompts(context.Background(), "a cat")
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 1))
	for range 100 {
		v := emb.Float32s()[rng.IntN(len(emb.Float32s()))]
		require.Equal(t, v, float32(float64(v)), "finite")
		// A float16 value has at most 11 significant bits.
		_, exp := math.Frexp(float64(v))
		scaled := math.Ldexp(float64(v), 11-exp)
		require.Equal(t, math.Round(scaled), scaled, "%v is not a float16 value", v)
	}
}

// TestDenoiserAllocations checks that a guided step allocates no more than
// the ONNX Runtime binding does for its UNet calls (a few small values per
// run): classifier-free guidance and Upsample Guidance add nothing.
func TestDenoiserAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	m := load(t, tinyDir("fp32"), WithSampleSize(64))
	cond, uncond := condEmbeddings(t, m)
	ctx := context.Background()
	x := randLatents(3, 1, 4, 16, 16)
	dst := tensor.New(tensor.WithShape(1, 4, 16, 16), tensor.Of(tensor.Float32))
	plain, err := m.Denoiser(mustResolve(t, m, Request{Width: 128, Height: 128, Upsample: &guidance.UpsampleOptions{}}), cond, uncond)
	require.NoError(t, err)
	guided, err := m.Denoiser(mustResolve(t, m, Request{Width: 128, Height: 128}), cond, uncond)
	require.NoError(t, err)
	measure := func(d ugo.Denoiser) float64 {
		require.NoError(t, d.PredictNoise(ctx, dst, x, []float32{900})) // warm the buffers
		return testing.AllocsPerRun(20, func() {
			if err := d.PredictNoise(ctx, dst, x, []float32{900}); err != nil {
				t.Fatal(err)
			}
		})
	}
	one := measure(plain)  // one batched cond+uncond UNet call
	two := measure(guided) // plus one low-resolution call
	t.Logf("allocations per call: CFG %v, CFG + Upsample Guidance %v", one, two)
	require.LessOrEqual(t, two, 2*one+1)
}

// recorded is a recording wrapper that forwards ugo.CPUFiller, as
// WithUNetMiddleware asks.
type recorded struct {
	ugo.Denoiser
	inner ugo.Denoiser
}

func (r recorded) FillsCPU() bool { return ugo.FillsCPU(r.inner) }

func TestWithUNetMiddleware(t *testing.T) {
	rec := &recorder{}
	var wrapped ugo.Denoiser
	m := load(t, tinyDir("fp32"), WithSampleSize(128), WithUNetMiddleware(func(d ugo.Denoiser) ugo.Denoiser {
		wrapped = d
		return recorded{Denoiser: rec.wrap(d), inner: d}
	}))
	res, err := m.Generate(context.Background(), Request{Prompt: "a cat", Width: 256, Height: 256, Steps: 4, Seed: 3})
	require.NoError(t, err)
	require.NotNil(t, wrapped, "the middleware was not applied")
	var full, low int
	for _, c := range rec.calls {
		switch {
		case slices.Equal(c.shape, []int{1, 4, 32, 32}):
			full++
		case slices.Equal(c.shape, []int{1, 4, 16, 16}):
			low++
		default:
			t.Errorf("call on %v", c.shape)
		}
	}
	require.Equal(t, 4, full, "full-resolution calls through the middleware")
	require.Equal(t, res.Settings.GuidedSteps, low, "low-resolution calls through the middleware")
	require.Positive(t, low)
	// The same generation without the middleware gives the same latents.
	plain := load(t, tinyDir("fp32"), WithSampleSize(128))
	want, err := plain.Generate(context.Background(), Request{Prompt: "a cat", Width: 256, Height: 256, Steps: 4, Seed: 3})
	require.NoError(t, err)
	require.Equal(t, want.Latents.Float32s(), res.Latents.Float32s())
}
