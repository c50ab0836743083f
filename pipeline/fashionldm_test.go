package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/onnx"
)

// The text-to-image latent models trained by tools/latent on Fashion-MNIST
// (testdata/models/README.md): 32x32 pixels, a VAE of factor 4 with 4 latent
// channels, 64-wide text states. One predicts epsilon, one v.
var ldmVariants = []string{"fashion_ldm_eps", "fashion_ldm_v"}

func ldmDir(name string) string { return filepath.Join("..", "testdata", "models", name) }

// ldmPrompts are the prompts the evaluation uses, one per Fashion-MNIST
// class in label order (tools/latent/prompts.py canonical).
var ldmPrompts = []string{
	"a photo of a t-shirt", "a photo of a pair of trousers", "a photo of a pullover", "a photo of a dress",
	"a photo of a coat", "a photo of a sandal", "a photo of a shirt", "a photo of a sneaker",
	"a photo of a bag", "a photo of an ankle boot",
}

type refSummary struct {
	Shape  []int     `json:"shape"`
	First  []float64 `json:"first"`
	Sum    float64   `json:"sum"`
	AbsSum float64   `json:"abs_sum"`
}

type ldmReference struct {
	Prompts     []string  `json:"prompts"`
	InputIDs    [][]int32 `json:"input_ids"`
	TextEncoder struct {
		LastHiddenState refSummary `json:"last_hidden_state"`
		PoolerOutput    refSummary `json:"pooler_output"`
	} `json:"text_encoder"`
	UNet struct {
		Timestep  []int64    `json:"timestep"`
		OutSample refSummary `json:"out_sample"`
	} `json:"unet"`
	VAEEncoder struct {
		LatentSample refSummary `json:"latent_sample"`
	} `json:"vae_encoder"`
	VAEDecoder struct {
		Sample refSummary `json:"sample"`
	} `json:"vae_decoder"`
}

// fixedInput is tools/latent/export.py's fixed(shape, phase):
// float32(sin(0.37*i + phase)) over the flat index.
func fixedInput(phase float64, shape ...int) *tensor.Dense {
	n := 1
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(math.Sin(float64(i)*0.37 + phase))
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))
}

// requireSummary compares ONNX Runtime's output with torch's summary.
func requireSummary(t *testing.T, what string, want refSummary, got *tensor.Dense) {
	t.Helper()
	require.Equal(t, want.Shape, []int(got.Shape()), what)
	v := got.Float32s()
	for i, w := range want.First {
		require.InDelta(t, w, float64(v[i]), 2e-4*(1+math.Abs(w)), "%s[%d]", what, i)
	}
	var sum, abs float64
	for _, x := range v {
		sum += float64(x)
		abs += math.Abs(float64(x))
	}
	require.InDelta(t, want.AbsSum, abs, 1e-4*want.AbsSum+1e-3, "%s: sum of |x|", what)
	require.InDelta(t, want.Sum, sum, 1e-4*want.AbsSum+1e-3, "%s: sum", what)
}

// TestFashionLDMMatchesTorch checks the shipped folders: the Go tokenizer
// gives the ids tools/latent tokenized with, and ONNX Runtime reproduces
// torch's outputs of all four networks (reference.json, written by
// tools/latent/export.py) on fixed inputs, at sizes other than the traced ones.
func TestFashionLDMMatchesTorch(t *testing.T) {
	for _, name := range ldmVariants {
		t.Run(name, func(t *testing.T) {
			dir := ldmDir(name)
			m := load(t, dir)
			data, err := os.ReadFile(filepath.Join(dir, "reference.json"))
			require.NoError(t, err)
			var ref ldmReference
			require.NoError(t, json.Unmarshal(data, &ref))
			info := m.Info()
			require.Equal(t, 4, info.VAEScale)
			require.Equal(t, 4, info.LatentChannels)
			require.Equal(t, 32, info.SampleSize)
			require.Equal(t, 64, info.HiddenSize)
			require.Equal(t, "vae_decoder/config.json", info.ScalingFactorSource)

			for i, p := range ref.Prompts {
				ids, _ := m.Tokenizer().EncodePadded(p)
				require.Len(t, ids, len(ref.InputIDs[i]))
				for j, id := range ids {
					require.Equal(t, ref.InputIDs[i][j], int32(id), "prompt %q token %d", p, j)
				}
			}
			ctx := context.Background()
			opts := []onnx.Option{onnx.WithThreads(1, 1)}
			run := func(path string, in map[string]*tensor.Dense, out map[string]*tensor.Dense) {
				g, err := onnx.OpenGraph(filepath.Join(dir, path), opts...)
				require.NoError(t, err)
				defer g.Close()
				require.NoError(t, g.Run(ctx, in, out))
			}
			hs := tensor.New(tensor.WithShape(3, 77, 64), tensor.Of(tensor.Float32))
			pooled := tensor.New(tensor.WithShape(3, 64), tensor.Of(tensor.Float32))
			ids := make([]int32, 0, 3*77)
			for _, row := range ref.InputIDs {
				ids = append(ids, row...)
			}
			run(TextEncoderPath, map[string]*tensor.Dense{"input_ids": tensor.New(tensor.WithShape(3, 77), tensor.WithBacking(ids))},
				map[string]*tensor.Dense{"last_hidden_state": hs, "pooler_output": pooled})
			requireSummary(t, "last_hidden_state", ref.TextEncoder.LastHiddenState, hs)
			requireSummary(t, "pooler_output", ref.TextEncoder.PoolerOutput, pooled)
			enc, _, err := m.EncodePrompts(ctx, ref.Prompts...)
			require.NoError(t, err)
			require.Zero(t, maxAbsDiff(t, hs.Float32s(), enc.Float32s()), "EncodePrompts = the graph on the same ids")

			ehs := tensor.New(tensor.WithShape(2, 77, 64), tensor.WithBacking(hs.Float32s()[:2*77*64]))
			out := tensor.New(tensor.WithShape(2, 4, 16, 8), tensor.Of(tensor.Float32))
			run(UNetPath, map[string]*tensor.Dense{"sample": fixedInput(0, 2, 4, 16, 8),
				"timestep": tensor.New(tensor.WithShape(2), tensor.WithBacking(ref.UNet.Timestep)), "encoder_hidden_states": ehs},
				map[string]*tensor.Dense{"out_sample": out})
			requireSummary(t, "unet out_sample", ref.UNet.OutSample, out)

			lat := tensor.New(tensor.WithShape(1, 4, 8, 8), tensor.Of(tensor.Float32))
			run("vae_encoder/model.onnx", map[string]*tensor.Dense{"sample": fixedInput(1, 1, 3, 32, 32)},
				map[string]*tensor.Dense{"latent_sample": lat})
			requireSummary(t, "vae_encoder latent_sample", ref.VAEEncoder.LatentSample, lat)
			img := tensor.New(tensor.WithShape(1, 3, 32, 48), tensor.Of(tensor.Float32))
			run(VAEDecoderPath, map[string]*tensor.Dense{"latent_sample": fixedInput(2, 1, 4, 8, 12)},
				map[string]*tensor.Dense{"sample": img})
			requireSummary(t, "vae_decoder sample", ref.VAEDecoder.Sample, img)
		})
	}
}

// classifyFashion runs the project's Fashion-MNIST classifier on the
// centre 28x28 of decoded 32x32 images (pixels [N, 3, S, S], S a multiple
// of 32: area-downsampled to 32 first), channels averaged, and returns the
// predicted classes.
func classifyFashion(t *testing.T, pixels *tensor.Dense) []int {
	t.Helper()
	s := pixels.Shape()
	n, size := s[0], s[2]
	f := size / 32
	require.Equal(t, 32*f, size)
	require.Equal(t, size, s[3])
	src := pixels.Float32s()
	x := make([]float32, n*28*28)
	for i := 0; i < n; i++ {
		for y := 0; y < 28; y++ {
			for xx := 0; xx < 28; xx++ {
				var acc float32
				for c := 0; c < 3; c++ {
					for dy := 0; dy < f; dy++ {
						for dx := 0; dx < f; dx++ {
							acc += src[((i*3+c)*size+(y+2)*f+dy)*size+(xx+2)*f+dx]
						}
					}
				}
				x[(i*28+y)*28+xx] = max(-1, min(1, acc/float32(3*f*f)))
			}
		}
	}
	sess, err := onnx.OpenGraph(filepath.Join("..", "testdata", "models", "fashion_classifier.onnx"), onnx.WithThreads(1, 1))
	require.NoError(t, err)
	defer sess.Close()
	logits := tensor.New(tensor.WithShape(n, 10), tensor.Of(tensor.Float32))
	feats := tensor.New(tensor.WithShape(n, 128), tensor.Of(tensor.Float32))
	require.NoError(t, sess.Run(context.Background(), map[string]*tensor.Dense{"x": tensor.New(tensor.WithShape(n, 1, 28, 28), tensor.WithBacking(x))},
		map[string]*tensor.Dense{"logits": logits, "features": feats}))
	l := logits.Float32s()
	out := make([]int, n)
	for i := range out {
		for k := 1; k < 10; k++ {
			if l[i*10+k] > l[i*10+out[i]] {
				out[i] = k
			}
		}
	}
	return out
}

// TestFashionLDMPromptsSteer generates images for each class's prompt and
// checks that the classifier mostly recognises the prompted class, at the
// training size and at 2x with Upsample Guidance (a chance model gets 10%).
func TestFashionLDMPromptsSteer(t *testing.T) {
	cases := []struct {
		size, perClass, minCorrect int
		up                         *guidance.UpsampleOptions
	}{
		{32, 3, 25, nil}, // of 30; the shipped models get 29 (eps) and 28 (v)
		// of 20, theta 1.2 through the whole run (eta 1), the best setting
		// of the README's table (prompt accuracy 0.84 and 0.82 at N = 500);
		// the shipped models get 17 and 16, plain 2x sampling about 5
		{64, 2, 11, &guidance.UpsampleOptions{Factors: []int{2, 2}, Theta: 1.2, Eta: 1}},
	}
	for _, name := range ldmVariants {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s/%d", name, c.size), func(t *testing.T) {
				m := load(t, ldmDir(name))
				correct, total := 0, 0
				for class, prompt := range ldmPrompts {
					res, err := m.Generate(context.Background(), Request{Prompt: prompt, Width: c.size, Height: c.size,
						Steps: 20, GuidanceScale: new(3.0), Seed: uint64(100 + class), Images: c.perClass, Upsample: c.up})
					require.NoError(t, err)
					for _, got := range classifyFashion(t, res.Pixels) {
						total++
						if got == class {
							correct++
						}
					}
				}
				t.Logf("%s at %dx%d: %d of %d images classified as the prompted class", name, c.size, c.size, correct, total)
				require.GreaterOrEqual(t, correct, c.minCorrect)
			})
		}
	}
}
