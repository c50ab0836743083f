package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
	"pgregory.net/rapid"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/onnx"
	"github.com/ugo-diffusion/ugo/tiling"
)

// TestSDXLLoad reads the SDXL folders' layout: both encoders, the widths
// of their states and of text_embeds from the graphs, the training size
// and scaling factor from the configs.
func TestSDXLLoad(t *testing.T) {
	for _, c := range []struct {
		variant, class string
		unet, text     onnx.DType
	}{
		{"xl", "StableDiffusionXLPipeline", onnx.Float32, onnx.Float32},
		{"xl16", "ORTStableDiffusionXLPipeline", onnx.Float16, onnx.Float16},
	} {
		t.Run(c.variant, func(t *testing.T) {
			m := load(t, tinyDir(c.variant))
			info := m.Info()
			require.True(t, info.SDXL)
			require.Equal(t, c.class, info.Pipeline)
			require.Equal(t, 32+64, info.HiddenSize)
			require.Equal(t, 64, info.PooledSize)
			require.Equal(t, 77, info.SequenceLength)
			require.Equal(t, 128, info.SampleSize)
			require.Equal(t, "unet/config.json", info.SampleSizeSource)
			require.Equal(t, 0.13025, info.ScalingFactor)
			require.Equal(t, 4, info.LatentMultiple)
			require.True(t, info.ForceZerosForEmptyPrompt)
			require.Equal(t, c.unet, info.UNet.Sample.DType)
			require.Equal(t, onnx.Float32, info.VAEDecoder.Inputs[0].DType, "the VAE stays float32")
			require.Equal(t, "hidden_states.11", m.textOut)
			require.Equal(t, "hidden_states.31", m.text2Out)
			require.Equal(t, c.text, info.TextEncoder2.Outputs[0].DType)
			require.Equal(t, 0, m.tok2.PadID(), "tokenizer_2 pads with \"!\"")
			require.Equal(t, m.tok.EndID(), m.tok.PadID(), "tokenizer pads with its end token")
		})
	}
}

// TestSDXLRefinerRefused checks that the refiner's signature is recognised
// and refused with an *UnsupportedError: from model_index.json, from the
// folder's parts without it, and from the UNet's 5 time_ids alone.
func TestSDXLRefinerRefused(t *testing.T) {
	noIndex := copyDir(t, tinyDir("xlrefiner"))
	require.NoError(t, os.Remove(filepath.Join(noIndex, ModelIndexPath)))
	refinerUNet := copyDir(t, tinyDir("xl"))
	require.NoError(t, os.Remove(filepath.Join(refinerUNet, ModelIndexPath)))
	data, err := os.ReadFile(filepath.Join(tinyDir("xlrefiner"), UNetPath))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(refinerUNet, UNetPath), data, 0o644))
	for name, dir := range map[string]string{"model_index.json": tinyDir("xlrefiner"), "no text_encoder": noIndex, "5 time_ids": refinerUNet} {
		t.Run(name, func(t *testing.T) {
			_, err := Load(dir, WithONNXOptions(onnx.WithThreads(1, 1)))
			var ue *UnsupportedError
			require.ErrorAs(t, err, &ue)
			require.ErrorIs(t, err, ErrUnsupported)
			require.Contains(t, ue.Kind, "SDXL refiner")
		})
	}
}

// TestSDXLMissingParts lists SDXL's own files when they are missing.
func TestSDXLMissingParts(t *testing.T) {
	dir := copyDir(t, tinyDir("xl"))
	require.NoError(t, os.RemoveAll(filepath.Join(dir, Tokenizer2Dir)))
	_, err := Load(dir)
	var me *MissingError
	require.ErrorAs(t, err, &me)
	require.Equal(t, []string{"tokenizer_2/vocab.json (or tokenizer_2/tokenizer.json)", "tokenizer_2/merges.txt (or tokenizer_2/tokenizer.json)"}, me.Missing)
}

// TestTimeIDs checks the time_ids of whole, low-resolution and tile calls,
// and that the low-resolution call of a request at f times the training
// size stands for the training size.
func TestTimeIDs(t *testing.T) {
	require.Equal(t, [6]float32{1024, 768, 0, 0, 1024, 768}, TimeIDs(ugo.WholeRegion(128, 96), 8))
	require.Equal(t, [6]float32{1024, 1024, 0, 0, 1024, 1024}, TimeIDs(ugo.WholeRegion(256, 256).Downscaled(2, 2), 8))
	require.Equal(t, [6]float32{2048, 2048, 256, 512, 2048, 2048}, TimeIDs(ugo.WholeRegion(256, 256).Window(32, 64), 8))
	require.Equal(t, [6]float32{1024, 1024, 128, 256, 1024, 1024}, TimeIDs(ugo.WholeRegion(256, 256).Window(32, 64).Downscaled(2, 2), 8))
	rapid.Check(t, func(t *rapid.T) {
		base := rapid.IntRange(1, 64).Draw(t, "base")
		fh := rapid.IntRange(1, 4).Draw(t, "fh")
		fw := rapid.IntRange(1, 4).Draw(t, "fw")
		vs := rapid.SampledFrom([]int{4, 8}).Draw(t, "vs")
		ids := TimeIDs(ugo.WholeRegion(base*fh, base*fw).Downscaled(fh, fw), vs)
		want := float32(base * vs)
		if ids != [6]float32{want, want, 0, 0, want, want} {
			t.Fatalf("time_ids %v, want the training size %v", ids, want)
		}
	})
}

// xlCond encodes a prompt and returns the conditional and unconditional
// (zero) conditioning.
func xlCond(t *testing.T, m *Model) (Conditioning, Conditioning) {
	t.Helper()
	c, _, err := m.Encode(context.Background(), "a photo of a cat")
	require.NoError(t, err)
	return c, zeroConditioning(c)
}

// TestSDXLTimeIDsReachTheUNet compares the pipeline's denoiser under a
// Region with the UNet bound by hand to the time_ids that Region implies:
// bit for bit equal, and different from the UNet bound to the target's
// time_ids (the sizes matter to the model).
func TestSDXLTimeIDsReachTheUNet(t *testing.T) {
	m := load(t, tinyDir("xl"))
	cond, _ := xlCond(t, m)
	p := mustResolve(t, m, Request{Width: 256, Height: 256, GuidanceScale: new(1.0), Upsample: &guidance.UpsampleOptions{}})
	d, err := m.DenoiserFor(p, cond, Conditioning{})
	require.NoError(t, err)
	x := randLatents(4, 1, 4, 16, 16)
	low := ugo.WithRegion(context.Background(), ugo.WholeRegion(32, 32).Downscaled(2, 2))
	got := tensor.New(tensor.WithShape(1, 4, 16, 16), tensor.Of(tensor.Float32))
	require.NoError(t, d.PredictNoise(low, got, x, []float32{500}))

	bind := func(ids ...float32) []float32 {
		b, err := m.unet.With("encoder_hidden_states", cond.States)
		require.NoError(t, err)
		b, err = b.With("text_embeds", cond.Pooled)
		require.NoError(t, err)
		b, err = b.With("time_ids", tensor.New(tensor.WithShape(1, 6), tensor.WithBacking(ids)))
		require.NoError(t, err)
		out := tensor.New(tensor.WithShape(1, 4, 16, 16), tensor.Of(tensor.Float32))
		require.NoError(t, b.PredictNoise(context.Background(), out, x, []float32{500}))
		return out.Float32s()
	}
	require.Equal(t, bind(128, 128, 0, 0, 128, 128), got.Float32s())
	require.Greater(t, maxAbsDiff(t, bind(256, 256, 0, 0, 256, 256), got.Float32s()), 1e-4)

	// Without a Region the call covers the whole 16x16 sample: 128 px.
	whole := tensor.New(tensor.WithShape(1, 4, 16, 16), tensor.Of(tensor.Float32))
	require.NoError(t, d.PredictNoise(context.Background(), whole, x, []float32{500}))
	require.Equal(t, got.Float32s(), whole.Float32s())
	// A region the input does not fit in is an error.
	bad := ugo.WithRegion(context.Background(), ugo.WholeRegion(8, 8))
	require.ErrorIs(t, d.PredictNoise(bad, whole, x, []float32{500}), ugo.ErrRegion)
}

// idsRecorder records, per input height, the time_ids each call below
// Upsample Guidance implies.
type idsRecorder struct {
	mu  sync.Mutex
	ids map[int][][6]float32
	vs  int
}

func (r *idsRecorder) wrap(d ugo.Denoiser) ugo.Denoiser {
	return ugo.DenoiserFunc(func(ctx context.Context, dst, x *tensor.Dense, ts []float32) error {
		s := x.Shape()
		r.mu.Lock()
		r.ids[s[2]] = append(r.ids[s[2]], TimeIDs(ugo.RegionOf(ctx, s[2], s[3]), r.vs))
		r.mu.Unlock()
		return d.PredictNoise(ctx, dst, x, ts)
	})
}

// TestSDXLGenerate runs text to image end to end on the fp32 and fp16
// SDXL exports: at the training size and at 2x with Upsample Guidance,
// CFG (with the zero unconditional branch and with a negative prompt) and
// tiled decoding. At 2x the low-resolution calls carry the training size's
// time_ids and the full-resolution ones the target's.
func TestSDXLGenerate(t *testing.T) {
	for _, variant := range []string{"xl", "xl16"} {
		t.Run(variant, func(t *testing.T) {
			m := load(t, tinyDir(variant))
			ctx := context.Background()
			rec := &idsRecorder{ids: map[int][][6]float32{}, vs: 8}
			m.hook = rec.wrap

			one, err := m.Generate(ctx, Request{Prompt: "a photo of a cat", Steps: 4, Seed: 1, Images: 2})
			require.NoError(t, err)
			require.Equal(t, []int{2, 3, 128, 128}, []int(one.Pixels.Shape()))
			require.Nil(t, one.Settings.Upsample)
			require.True(t, one.Settings.CFG)
			for _, ids := range rec.ids[16] {
				require.Equal(t, [6]float32{128, 128, 0, 0, 128, 128}, ids)
			}
			require.Len(t, rec.ids[16], 4)

			rec.ids = map[int][][6]float32{}
			two, err := m.Generate(ctx, Request{Prompt: "a photo of a cat", NegativePrompt: "blurry", Width: 256, Height: 256, Steps: 4, Seed: 1,
				Upsample: &guidance.UpsampleOptions{Theta: 1, Eta: 1}, Decode: DecodeOptions{Tiling: TileAlways, TileSize: 16, Overlap: 4}})
			require.NoError(t, err)
			require.Equal(t, []int{1, 3, 256, 256}, []int(two.Pixels.Shape()))
			require.Equal(t, []int{2, 2}, factorsOf(two.Settings))
			require.Equal(t, 9, two.Settings.TilesPerImage)
			require.Len(t, rec.ids[32], 4)
			require.Len(t, rec.ids[16], 4, "one low-resolution call per step")
			for _, ids := range rec.ids[32] {
				require.Equal(t, [6]float32{256, 256, 0, 0, 256, 256}, ids)
			}
			for _, ids := range rec.ids[16] {
				require.Equal(t, [6]float32{128, 128, 0, 0, 128, 128}, ids, "the low-resolution branch is conditioned on the training size")
			}
			for _, r := range []*Result{one, two} {
				require.Negative(t, ugo.FirstNonFinite(r.Pixels.Float32s()))
				require.Negative(t, ugo.FirstNonFinite(r.Latents.Float32s()))
			}
		})
	}
}

// TestSDXLEncode checks the assembly of SDXL's conditioning: the states
// are text_encoder's and text_encoder_2's penultimate hidden states side by
// side, the pooled embedding is text_encoder_2's text_embeds; and an empty
// negative prompt gives zeros under force_zeros_for_empty_prompt.
func TestSDXLEncode(t *testing.T) {
	m := load(t, tinyDir("xl"))
	ctx := context.Background()
	c, tr, err := m.Encode(ctx, "a photo of a cat", "blurry!")
	require.NoError(t, err)
	require.Equal(t, []bool{false, false}, tr)
	require.Equal(t, []int{2, 77, 96}, []int(c.States.Shape()))
	require.Equal(t, []int{2, 64}, []int(c.Pooled.Shape()))

	ids1, _ := tokenize(m.tok, []string{"a photo of a cat", "blurry!"})
	ids2, _ := tokenize(m.tok2, []string{"a photo of a cat", "blurry!"})
	require.NotEqual(t, ids1.Int32s(), ids2.Int32s(), "the two tokenizers pad differently")
	s1 := tensor.New(tensor.WithShape(2, 77, 32), tensor.Of(tensor.Float32))
	require.NoError(t, m.text.Run(ctx, map[string]*tensor.Dense{"input_ids": ids1}, map[string]*tensor.Dense{"hidden_states.11": s1}))
	s2 := tensor.New(tensor.WithShape(2, 77, 64), tensor.Of(tensor.Float32))
	pooled := tensor.New(tensor.WithShape(2, 64), tensor.Of(tensor.Float32))
	require.NoError(t, m.text2.Run(ctx, map[string]*tensor.Dense{"input_ids": ids2}, map[string]*tensor.Dense{"hidden_states.31": s2, "text_embeds": pooled}))
	got := c.States.Float32s()
	for r := range 2 * 77 {
		require.Equal(t, s1.Float32s()[r*32:(r+1)*32], got[r*96:r*96+32])
		require.Equal(t, s2.Float32s()[r*64:(r+1)*64], got[r*96+32:(r+1)*96])
	}
	require.Equal(t, pooled.Float32s(), c.Pooled.Float32s())

	p := mustResolve(t, m, Request{})
	cond, uncond, _, err := m.encodeRequest(ctx, p, Request{Prompt: "a photo of a cat"})
	require.NoError(t, err)
	require.Equal(t, c.States.Float32s()[:77*96], cond.States.Float32s())
	require.True(t, slices.Equal(make([]float32, 77*96), uncond.States.Float32s()))
	require.True(t, slices.Equal(make([]float32, 64), uncond.Pooled.Float32s()))
	_, uncond, _, err = m.encodeRequest(ctx, p, Request{Prompt: "a photo of a cat", NegativePrompt: "blurry!"})
	require.NoError(t, err)
	require.Equal(t, c.States.Float32s()[77*96:], uncond.States.Float32s())
	require.Equal(t, c.Pooled.Float32s()[64:], uncond.Pooled.Float32s())

	// SD 1.x conditioning has no pooled part; SDXL refuses to run without it.
	_, err = m.DenoiserFor(p, Conditioning{States: cond.States}, uncond)
	require.Error(t, err)
	_, err = m.Denoiser(p, cond.States, uncond.States)
	require.Error(t, err)
	require.False(t, math.IsNaN(float64(got[0])))
	require.False(t, errors.Is(err, ErrUnsupported))
}

// TestSDXLTiledTimeIDs runs a 2x generation with the UNet tiled under
// Upsample Guidance: each tile call is conditioned on the whole image's
// size with the tile's offset as the crop, the untiled low-resolution call
// on the training size.
func TestSDXLTiledTimeIDs(t *testing.T) {
	m := load(t, tinyDir("xl"))
	type seen struct {
		ids    [6]float32
		region ugo.Region
	}
	var mu sync.Mutex
	var calls []seen
	m.hook = func(d ugo.Denoiser) ugo.Denoiser {
		return ugo.DenoiserFunc(func(ctx context.Context, dst, x *tensor.Dense, ts []float32) error {
			s := x.Shape()
			r := ugo.RegionOf(ctx, s[2], s[3])
			mu.Lock()
			calls = append(calls, seen{TimeIDs(r, 8), r})
			mu.Unlock()
			return d.PredictNoise(ctx, dst, x, ts)
		})
	}
	res, err := m.Generate(context.Background(), Request{Prompt: "a photo of a cat", Width: 256, Height: 256, Steps: 3, Seed: 2,
		Upsample: &guidance.UpsampleOptions{Theta: 1, Eta: 1}, Tile: &tiling.Options{Overlap: [2]int{8, 8}}})
	require.NoError(t, err)
	require.Equal(t, [2]int{16, 16}, res.Settings.Tile.Size)
	crops := map[[2]float32]int{}
	lows := 0
	for _, c := range calls {
		if c.region.Scale == [2]int{2, 2} {
			lows++
			require.Equal(t, [6]float32{128, 128, 0, 0, 128, 128}, c.ids)
			continue
		}
		require.Equal(t, [2]int{1, 1}, c.region.Scale)
		require.Equal(t, [6]float32{256, 256, c.ids[2], c.ids[3], 256, 256}, c.ids)
		require.Equal(t, [2]float32{float32(c.region.Offset[0] * 8), float32(c.region.Offset[1] * 8)}, [2]float32{c.ids[2], c.ids[3]})
		crops[[2]float32{c.ids[2], c.ids[3]}]++
	}
	require.Equal(t, 3, lows, "one untiled low-resolution call per step")
	require.Equal(t, 3*len(crops), len(calls)-lows, "every tile once per step")
	require.Contains(t, crops, [2]float32{0, 0})
	require.Contains(t, crops, [2]float32{128, 128}, "the last tile ends at the image's edge")
	require.Greater(t, len(crops), 1)
	require.Negative(t, ugo.FirstNonFinite(res.Pixels.Float32s()))
}

// sdxlGolden is pipeline/testdata/sdxl_golden.json, written by
// tools/sdtiny/xl_golden.py from diffusers' own encode_prompt and
// _get_add_time_ids run on the torch modules of testdata/sdtiny/xl.
type sdxlGolden struct {
	Rows  []int `json:"rows"`
	Cases []struct {
		Prompt         string    `json:"prompt"`
		Negative       *string   `json:"negative"`
		IDs            []int     `json:"ids"`
		IDs2           []int     `json:"ids_2"`
		Embeds         goldenRow `json:"prompt_embeds"`
		NegativeEmbeds goldenRow `json:"negative_prompt_embeds"`
		Pooled         []float32 `json:"pooled_prompt_embeds"`
		NegativePooled []float32 `json:"negative_pooled_prompt_embeds"`
	} `json:"cases"`
	TimeIDs []struct {
		Original [2]int     `json:"original_size"`
		Crop     [2]int     `json:"crops_coords_top_left"`
		Target   [2]int     `json:"target_size"`
		IDs      [6]float32 `json:"add_time_ids"`
	} `json:"time_ids"`
}

type goldenRow struct {
	Rows   map[string][]float32 `json:"rows"`
	Sum    float64              `json:"sum"`
	AbsSum float64              `json:"abs_sum"`
}

// check compares states [1, 77, H] with the golden rows and sums.
func (g goldenRow) check(t *testing.T, what string, states []float32, width int) {
	t.Helper()
	var sum, abs float64
	for _, v := range states {
		sum += float64(v)
		abs += math.Abs(float64(v))
	}
	require.InDelta(t, g.Sum, sum, 1e-3, what)
	require.InDelta(t, g.AbsSum, abs, 1e-3, what)
	for r, want := range g.Rows {
		i, err := strconv.Atoi(r)
		require.NoError(t, err)
		require.LessOrEqual(t, maxAbsDiff(t, want, states[i*width:(i+1)*width]), 2e-5, "%s row %d", what, i)
	}
}

// TestSDXLMatchesDiffusers compares the conditioning Generate builds with
// diffusers' StableDiffusionXLPipeline.encode_prompt on the same weights
// (the torch modules the xl folder was exported from): token ids of both
// tokenizers, the concatenated penultimate states, the pooled embeddings,
// the zero unconditional branch for a missing negative prompt; and
// TimeIDs with _get_add_time_ids.
func TestSDXLMatchesDiffusers(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "sdxl_golden.json"))
	require.NoError(t, err)
	var g sdxlGolden
	require.NoError(t, json.Unmarshal(data, &g))
	require.Len(t, g.Cases, 3)
	m := load(t, tinyDir("xl"))
	ctx := context.Background()
	p := mustResolve(t, m, Request{})
	for _, c := range g.Cases {
		ids, _ := m.tok.EncodePadded(c.Prompt)
		require.Equal(t, c.IDs, ids, "tokenizer ids of %q", c.Prompt)
		ids2, _ := m.tok2.EncodePadded(c.Prompt)
		require.Equal(t, c.IDs2, ids2, "tokenizer_2 ids of %q", c.Prompt)

		var cond, uncond Conditioning
		if c.Negative != nil && *c.Negative == "" {
			// diffusers encodes an explicit "" (only None gives zeros);
			// Request.NegativePrompt "" is None here: encode "" directly.
			cond, _, err = m.Encode(ctx, c.Prompt)
			require.NoError(t, err)
			uncond, _, err = m.Encode(ctx, "")
		} else {
			neg := ""
			if c.Negative != nil {
				neg = *c.Negative
			}
			cond, uncond, _, err = m.encodeRequest(ctx, p, Request{Prompt: c.Prompt, NegativePrompt: neg})
		}
		require.NoError(t, err)
		c.Embeds.check(t, c.Prompt, cond.States.Float32s(), 96)
		c.NegativeEmbeds.check(t, c.Prompt+" (negative)", uncond.States.Float32s(), 96)
		require.LessOrEqual(t, maxAbsDiff(t, c.Pooled, cond.Pooled.Float32s()), 2e-5)
		require.LessOrEqual(t, maxAbsDiff(t, c.NegativePooled, uncond.Pooled.Float32s()), 2e-5)
	}
	require.Len(t, g.TimeIDs, 2)
	for _, ti := range g.TimeIDs {
		require.Equal(t, ti.Original, ti.Target)
		r := ugo.Region{Size: [2]int{ti.Original[0] / 8, ti.Original[1] / 8}, Offset: [2]int{ti.Crop[0] / 8, ti.Crop[1] / 8}, Scale: [2]int{1, 1}}
		require.Equal(t, ti.IDs, TimeIDs(r, 8))
	}
}

// TestSDXLBlankNegative checks that " " encodes the empty prompt (what
// diffusers does for negative_prompt=""), while "" gives zeros.
func TestSDXLBlankNegative(t *testing.T) {
	m := load(t, tinyDir("xl"))
	ctx := context.Background()
	p := mustResolve(t, m, Request{})
	_, blank, _, err := m.encodeRequest(ctx, p, Request{Prompt: "a cat", NegativePrompt: " "})
	require.NoError(t, err)
	empty, _, err := m.Encode(ctx, "")
	require.NoError(t, err)
	require.Equal(t, empty.States.Float32s(), blank.States.Float32s())
	require.Equal(t, empty.Pooled.Float32s(), blank.Pooled.Float32s())
	require.NotEqual(t, make([]float32, 64), blank.Pooled.Float32s())
}

// TestSDXLMismatchedParts refuses SDXL folders whose parts do not fit: a
// text encoder exported without hidden states, a UNet without SDXL's
// added conditions, a second encoder without text_embeds.
func TestSDXLMismatchedParts(t *testing.T) {
	cases := []struct {
		name, rel, from, want string
	}{
		{"SD 1.x text encoder", TextEncoderPath, filepath.Join(tinyDir("fp16"), TextEncoderPath), "no hidden_states.N outputs"},
		{"SD 1.x UNet", UNetPath, filepath.Join(tinyDir("fp16"), UNetPath), "an SDXL UNet takes encoder_hidden_states, text_embeds and time_ids"},
		{"text_encoder_2 without text_embeds", TextEncoder2Path, filepath.Join(tinyDir("xl"), TextEncoderPath), `no output "text_embeds"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyDir(t, tinyDir("xl"))
			data, err := os.ReadFile(c.from)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, c.rel), data, 0o644))
			_, err = Load(dir, WithONNXOptions(onnx.WithThreads(1, 1)))
			require.ErrorContains(t, err, c.want)
			require.NotErrorIs(t, err, ErrUnsupported)
		})
	}
}

// TestSDXLDenoiserAllocations checks that deriving time_ids per call adds
// nothing per step once the bindings exist (the same count as the UNet
// bound by hand), and that a step with Upsample Guidance
// allocates no more than twice a plain CFG step (the ONNX Runtime binding's
// few small values per UNet call), as for SD 1.x.
func TestSDXLDenoiserAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	m := load(t, tinyDir("xl"))
	cond, uncond := xlCond(t, m)
	ctx := context.Background()
	x := randLatents(3, 1, 4, 32, 32)
	dst := tensor.New(tensor.WithShape(1, 4, 32, 32), tensor.Of(tensor.Float32))
	plain, err := m.DenoiserFor(mustResolve(t, m, Request{Width: 256, Height: 256, Upsample: &guidance.UpsampleOptions{}}), cond, uncond)
	require.NoError(t, err)
	guided, err := m.DenoiserFor(mustResolve(t, m, Request{Width: 256, Height: 256}), cond, uncond)
	require.NoError(t, err)
	measure := func(d ugo.Denoiser) float64 {
		require.NoError(t, d.PredictNoise(ctx, dst, x, []float32{900}))
		return testing.AllocsPerRun(20, func() {
			if err := d.PredictNoise(ctx, dst, x, []float32{900}); err != nil {
				t.Fatal(err)
			}
		})
	}
	one, two := measure(plain), measure(guided)
	inner, err := plain.(*xlUNet).model(TimeIDs(ugo.WholeRegion(32, 32), 8))
	require.NoError(t, err)
	bound := measure(inner)
	t.Logf("allocations per call: bound UNet under CFG %v, with time_ids from the Region %v, plus Upsample Guidance %v", bound, one, two)
	require.Equal(t, bound, one, "reading the Region and looking up the binding allocate nothing")
	require.LessOrEqual(t, two, 2*one+1)
}

// TestSDXLTimeIDsCacheBounded checks that the bindings kept per distinct
// time_ids stay bounded when every call brings new ones (jittered tiles),
// and that a binding made again gives the same prediction.
func TestSDXLTimeIDsCacheBounded(t *testing.T) {
	m := load(t, tinyDir("xl"))
	cond, uncond := xlCond(t, m)
	d, err := m.xlDenoiser(mustResolve(t, m, Request{}), cond, uncond)
	require.NoError(t, err)
	u := d.(*xlUNet)
	x := randLatents(5, 1, 4, 16, 16)
	predict := func(ids [6]float32) []float32 {
		model, err := u.model(ids)
		require.NoError(t, err)
		out := tensor.New(tensor.WithShape(1, 4, 16, 16), tensor.Of(tensor.Float32))
		require.NoError(t, model.PredictNoise(context.Background(), out, x, []float32{700}))
		return out.Float32s()
	}
	first := predict([6]float32{128, 128, 0, 0, 128, 128})
	for i := range maxTimeIDs + 10 {
		_, err := u.model([6]float32{4096, 4096, float32(8 * i), 0, 4096, 4096})
		require.NoError(t, err)
		require.LessOrEqual(t, len(u.byIDs), maxTimeIDs)
	}
	require.Equal(t, first, predict([6]float32{128, 128, 0, 0, 128, 128}))
}

// TestSDXLFillsCPU checks that the SDXL UNet (with and without CFG) answers
// ugo.CPUFiller as its ONNX session does, so Upsample Guidance schedules its
// two calls over it as over any other model.
func TestSDXLFillsCPU(t *testing.T) {
	cpus := runtime.NumCPU()
	cases := []struct {
		threads int
		want    bool
	}{{cpus, true}}
	if cpus > 1 {
		cases = append(cases, struct {
			threads int
			want    bool
		}{cpus - 1, false})
	}
	for _, c := range cases {
		m := load(t, tinyDir("xl"), WithONNXOptions(onnx.WithThreads(c.threads, 1)))
		cond, uncond := xlCond(t, m)
		for _, scale := range []float64{1, 5} {
			p := mustResolve(t, m, Request{Width: 128, Height: 128, GuidanceScale: new(scale)})
			un := Conditioning{}
			if scale != 1 {
				un = uncond
			}
			d, err := m.DenoiserFor(p, cond, un)
			require.NoError(t, err)
			require.Equal(t, c.want, ugo.FillsCPU(d), "%d intra-op threads on %d CPUs, CFG %g", c.threads, cpus, scale)
		}
	}
}
