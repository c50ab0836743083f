package upscale

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/resize"
	"github.com/ugo-diffusion/ugo/sampler"
)

var seeds = []uint64{11, 12, 13}

func testSampling(model ugo.Denoiser) Sampling {
	return Sampling{
		Model: model, Schedule: testSchedule, Solver: ddim(), Steps: 10,
		Channels: 1, Trained: [2]int{8, 8}, Noise: noise.TorchSeeds(seeds...),
	}
}

func ugOptions() *guidance.UpsampleOptions {
	o := guidance.DefaultUpsampleOptions()
	o.Factors = nil
	return &o
}

// Sample is the seeded run that the Fashion-MNIST examples make by hand:
// image i's initial noise from noise.NewTorchCPU(seed_i), then
// sampler.Sample; with Upsample Guidance, the model wrapped with factors
// size/Trained.
func TestSampleIsTheSeededRun(t *testing.T) {
	model := pointwise{0.4, 0.3}
	for _, tc := range []struct {
		size int
		ug   *guidance.UpsampleOptions
	}{{8, nil}, {16, nil}, {16, ugOptions()}, {24, ugOptions()}} {
		s := testSampling(model)
		got, err := Generate{Height: tc.size, Width: tc.size, Upsample: tc.ug}.Run(context.Background(), &s, nil)
		require.NoError(t, err)

		per := tc.size * tc.size
		want := newTensor(len(seeds), 1, tc.size, tc.size)
		for i, seed := range seeds {
			noise.NewTorchCPU(seed).Normal(want.Float32s()[i*per : (i+1)*per])
		}
		var m ugo.Denoiser = model
		if tc.ug != nil {
			o := guidance.DefaultUpsampleOptions()
			o.Factors = []int{tc.size / 8, tc.size / 8}
			m, err = guidance.Upsample(model, testSchedule, o)
			require.NoError(t, err)
		}
		require.NoError(t, sampler.Sample(context.Background(), m, ddim(), want, sampler.Options{Steps: 10}))
		require.Equal(t, want.Float32s(), got.Float32s(), "size %d, UG %v", tc.size, tc.ug != nil)
	}
}

// Refine is resize + img2img with per-image noise, and with Structure
// Guidance the same run on the wrapped model.
func TestRefineIsResizeThenImg2Img(t *testing.T) {
	model := pointwise{0.4, 0.3}
	r := rand.New(rand.NewPCG(5, 6))
	x := randTensor(r, 3, 1, 8, 8)
	for _, strength := range []float64{0.3, 0.5, 1} {
		s := testSampling(model)
		st := Refine{Height: 16, Width: 16, Strength: strength, Upsample: ugOptions()}
		got, err := st.Run(context.Background(), &s, x)
		require.NoError(t, err)

		want, err := resize.To(resize.Bicubic, x, 16, 16)
		require.NoError(t, err)
		o := guidance.DefaultUpsampleOptions()
		o.Factors = []int{2, 2}
		m, err := guidance.Upsample(model, testSchedule, o)
		require.NoError(t, err)
		src := noise.PerImage(noise.TorchSeeds(seeds...)...)
		require.NoError(t, sampler.Sample(context.Background(), m, ddim(), want, sampler.Options{Steps: 10, Strength: strength, Noise: src}))
		require.Equal(t, want.Float32s(), got.Float32s(), "strength %v", strength)
	}

	// With Structure Guidance: gamma from the first restarted step (7 of
	// DDIM's 10 at strength 0.3) to the last.
	s := testSampling(model)
	got, err := Refine{Height: 16, Width: 16, Strength: 0.3, Filter: resize.Lanczos3, Structure: &guidance.StructureOptions{Cutoff: 0.5}}.Run(context.Background(), &s, x)
	require.NoError(t, err)
	ref, err := resize.To(resize.Lanczos3, x, 16, 16)
	require.NoError(t, err)
	plan, err := ddim().Trajectory(10)
	require.NoError(t, err)
	g, err := guidance.StructureGuidance(model, testSchedule, ref, guidance.StructureOptions{Cutoff: 0.5, From: plan.Timesteps[7], To: plan.Timesteps[9]})
	require.NoError(t, err)
	want := clone(ref)
	require.NoError(t, sampler.Sample(context.Background(), g, ddim(), want, sampler.Options{Steps: 10, Strength: 0.3, Noise: noise.PerImage(noise.TorchSeeds(seeds...)...)}))
	require.Equal(t, want.Float32s(), got.Float32s())
}

// Latent Frequency Mixing through a Codec: the reference is LP(bilinear
// latent upsample) + HP(encode(bicubic(decode(x)))).
func TestRefineMixesThroughTheCodec(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	x := randTensor(r, 3, 4, 8, 8)
	codec := vae{channels: 4}
	s := testSampling(pointwise{0.4, 0.3})
	s.Channels = 4
	mix := &MixOptions{Cutoff: 0.5}
	got, err := Refine{Height: 16, Width: 16, Strength: 0.5, Codec: codec, Mix: mix}.Run(context.Background(), &s, x)
	require.NoError(t, err)

	rgb, err := Interpolate{Height: 16, Width: 16, Codec: codec}.Run(context.Background(), nil, x)
	require.NoError(t, err)
	img, err := codec.Decode(context.Background(), x)
	require.NoError(t, err)
	up, err := resize.To(resize.Bicubic, img, 32, 32)
	require.NoError(t, err)
	enc, err := codec.Encode(context.Background(), up)
	require.NoError(t, err)
	require.Equal(t, enc.Float32s(), rgb.Float32s(), "Interpolate with a Codec is encode(resize(decode(x)))")
	low, err := resize.To(resize.Bilinear, x, 16, 16)
	require.NoError(t, err)
	ref, err := MixFrequencies(low, rgb, 0.5)
	require.NoError(t, err)
	want := clone(ref)
	require.NoError(t, sampler.Sample(context.Background(), pointwise{0.4, 0.3}, ddim(), want,
		sampler.Options{Steps: 10, Strength: 0.5, Noise: noise.PerImage(noise.TorchSeeds(seeds...)...)}))
	require.Equal(t, want.Float32s(), got.Float32s())
}

// On the analytic Gaussian field sampled at twice its training size,
// refinement at strength 0.6 redraws the low frequencies; Structure
// Guidance keeps them closer to the upscaled reference.
func TestStructureGuidanceKeepsLowFrequencies(t *testing.T) {
	model := fieldModel(2)
	r := rand.New(rand.NewPCG(9, 10))
	n := 4
	if raceEnabled {
		n = 2
	}
	x := randTensor(r, n, 1, 16, 16)
	lowDev := func(st Refine) float64 {
		s := testSampling(model)
		s.Noise = noise.TorchSeeds(seeds[0])
		s.Batch = n
		s.Trained = [2]int{16, 16}
		out, err := st.Run(context.Background(), &s, x)
		require.NoError(t, err)
		ref, err := resize.To(resize.Bicubic, x, 32, 32)
		require.NoError(t, err)
		a, err := LowPass(out, 0.25)
		require.NoError(t, err)
		b, err := LowPass(ref, 0.25)
		require.NoError(t, err)
		sum := 0.0
		for i, v := range a.Float32s() {
			d := float64(v - b.Float32s()[i])
			sum += d * d
		}
		return math.Sqrt(sum / float64(len(a.Float32s())))
	}
	plain := lowDev(Refine{Height: 32, Width: 32, Strength: 0.6})
	guided := lowDev(Refine{Height: 32, Width: 32, Strength: 0.6, Structure: &guidance.StructureOptions{}})
	t.Logf("RMS deviation of LP(output) from LP(reference): plain %.4f, structure-guided %.4f", plain, guided)
	require.Less(t, guided, 0.5*plain)
}

// A multi-stage run 8 -> 16 -> 32 returns every stage's output, reports
// progress per stage, and its first stage equals a single Generate.
func TestRunStages(t *testing.T) {
	s := testSampling(pointwise{0.4, 0.3})
	type step struct{ stage, step, steps int }
	var seen []step
	s.Progress = func(stage int, p sampler.ProgressInfo) error {
		seen = append(seen, step{stage, p.Step, p.Steps})
		return nil
	}
	outs, err := Run(context.Background(), s, nil,
		Generate{Height: 8, Width: 8},
		Refine{Height: 16, Width: 16, Strength: 0.5, Upsample: ugOptions()},
		Interpolate{Height: 24, Width: 24, Filter: resize.Lanczos3},
		Refine{Height: 32, Width: 32, Strength: 0.4, Steps: 20, Upsample: ugOptions(), Mix: &MixOptions{}, Structure: &guidance.StructureOptions{}},
	)
	require.NoError(t, err)
	require.Len(t, outs, 4)
	for i, size := range []int{8, 16, 24, 32} {
		require.Equal(t, tensor.Shape{3, 1, size, size}, outs[i].Shape(), "stage %d", i)
		for _, v := range outs[i].Float32s() {
			require.False(t, math.IsNaN(float64(v)) || math.IsInf(float64(v), 0), "stage %d", i)
		}
	}
	// 10 steps, then 5 of 10, none, 8 of 20.
	require.Len(t, seen, 10+5+8)
	require.Equal(t, step{0, 0, 10}, seen[0])
	require.Equal(t, step{1, 5, 10}, seen[10])
	require.Equal(t, step{3, 12, 20}, seen[15])
	require.Equal(t, step{3, 19, 20}, seen[len(seen)-1])

	s.Progress = nil
	s.Noise = noise.TorchSeeds(seeds...) // the run advanced the sources
	first, err := Generate{Height: 8, Width: 8}.Run(context.Background(), &s, nil)
	require.NoError(t, err)
	require.Equal(t, first.Float32s(), outs[0].Float32s())

	// An image's result does not depend on its batch.
	one := testSampling(pointwise{0.4, 0.3})
	one.Noise = noise.TorchSeeds(seeds[1])
	single, err := Run(context.Background(), one, nil,
		Generate{Height: 8, Width: 8},
		Refine{Height: 16, Width: 16, Strength: 0.5, Upsample: ugOptions()})
	require.NoError(t, err)
	require.Equal(t, outs[1].Float32s()[256:512], single[1].Float32s())
}

func TestRunErrors(t *testing.T) {
	ctx := context.Background()
	s := testSampling(pointwise{0.4, 0.3})
	_, err := Run(ctx, s, nil)
	require.Error(t, err, "no stages")
	outs, err := Run(ctx, s, nil, Generate{Height: 8, Width: 8}, nil)
	require.Error(t, err, "nil stage")
	require.Len(t, outs, 1, "the completed stage's output is returned")

	stop := errors.New("stop")
	s.Progress = func(stage int, _ sampler.ProgressInfo) error {
		if stage == 1 {
			return stop
		}
		return nil
	}
	outs, err = Run(ctx, s, nil, Generate{Height: 8, Width: 8}, Refine{Height: 16, Width: 16, Strength: 0.5})
	require.ErrorIs(t, err, stop)
	require.Len(t, outs, 1)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = Run(cancelled, testSampling(pointwise{0.4, 0.3}), nil, Generate{Height: 8, Width: 8})
	require.ErrorIs(t, err, context.Canceled)
}

func TestStageErrors(t *testing.T) {
	ctx := context.Background()
	x := newTensor(3, 1, 8, 8)
	good := testSampling(pointwise{0.4, 0.3})
	mod := func(f func(*Sampling)) *Sampling {
		s := good
		f(&s)
		return &s
	}
	for name, tc := range map[string]struct {
		s  *Sampling
		st Stage
		x  *tensor.Dense
	}{
		"no model":           {mod(func(s *Sampling) { s.Model = nil }), Generate{Height: 8, Width: 8}, nil},
		"no solver":          {mod(func(s *Sampling) { s.Solver = nil }), Generate{Height: 8, Width: 8}, nil},
		"no steps":           {mod(func(s *Sampling) { s.Steps = 0 }), Generate{Height: 8, Width: 8}, nil},
		"no noise":           {mod(func(s *Sampling) { s.Noise = nil }), Generate{Height: 8, Width: 8}, nil},
		"nil noise":          {mod(func(s *Sampling) { s.Noise = []noise.Source{nil} }), Generate{Height: 8, Width: 8}, nil},
		"batch vs sources":   {mod(func(s *Sampling) { s.Batch = 2 }), Generate{Height: 8, Width: 8}, nil},
		"negative batch":     {mod(func(s *Sampling) { s.Noise, s.Batch = s.Noise[:1], -1 }), Generate{Height: 8, Width: 8}, nil},
		"negative trained":   {mod(func(s *Sampling) { s.Trained = [2]int{-8, 8} }), Generate{Height: 8, Width: 8}, nil},
		"no channels":        {mod(func(s *Sampling) { s.Channels = 0 }), Generate{Height: 8, Width: 8}, nil},
		"no size":            {&good, Generate{Width: 8}, nil},
		"UG not a multiple":  {&good, Generate{Height: 12, Width: 12, Upsample: ugOptions()}, nil},
		"UG wrong factors":   {&good, Generate{Height: 32, Width: 32, Upsample: &guidance.UpsampleOptions{Factors: []int{2, 2}, Theta: 1, Eta: 1}}, nil},
		"UG no schedule":     {mod(func(s *Sampling) { s.Schedule = nil }), Generate{Height: 16, Width: 16, Upsample: ugOptions()}, nil},
		"UG no factors":      {mod(func(s *Sampling) { s.Trained = [2]int{} }), Generate{Height: 16, Width: 16, Upsample: ugOptions()}, nil},
		"UG bad options":     {&good, Generate{Height: 16, Width: 16, Upsample: &guidance.UpsampleOptions{Theta: 1, Eta: 2}}, nil},
		"strength 0":         {&good, Refine{Height: 16, Width: 16}, x},
		"strength above 1":   {&good, Refine{Height: 16, Width: 16, Strength: 1.5}, x},
		"strength too small": {&good, Refine{Height: 16, Width: 16, Strength: 0.05}, x},
		"refine nil input":   {&good, Refine{Height: 16, Width: 16, Strength: 0.5}, nil},
		"refine batch":       {&good, Refine{Height: 16, Width: 16, Strength: 0.5}, newTensor(2, 1, 8, 8)},
		"refine no size":     {&good, Refine{Height: 16, Strength: 0.5}, x},
		"SG no schedule":     {mod(func(s *Sampling) { s.Schedule = nil }), Refine{Height: 16, Width: 16, Strength: 0.5, Structure: &guidance.StructureOptions{}}, x},
		"SG bad weight":      {&good, Refine{Height: 16, Width: 16, Strength: 0.5, Structure: &guidance.StructureOptions{Weight: -1}}, x},
		"mix bad cutoff":     {&good, Refine{Height: 16, Width: 16, Strength: 0.5, Mix: &MixOptions{Cutoff: 3}}, x},
		"interpolate size":   {&good, Interpolate{Height: 0, Width: 8}, x},
		"interpolate nil":    {&good, Interpolate{Height: 8, Width: 8}, nil},
		"codec odd ratio":    {&good, Interpolate{Height: 16, Width: 16, Codec: badCodec{}}, x},
		"codec failure":      {&good, Interpolate{Height: 16, Width: 16, Codec: failCodec{}}, x},
	} {
		_, err := tc.st.Run(ctx, tc.s, tc.x)
		require.Error(t, err, name)
	}
}

// badCodec decodes to images 3x taller than wide.
type badCodec struct{}

func (badCodec) Decode(_ context.Context, z *tensor.Dense) (*tensor.Dense, error) {
	s := z.Shape()
	return newTensor(s[0], 3, 3*s[2], 2*s[3]), nil
}

func (badCodec) Encode(_ context.Context, img *tensor.Dense) (*tensor.Dense, error) {
	return nil, errors.New("not reached")
}

type failCodec struct{}

func (failCodec) Decode(_ context.Context, z *tensor.Dense) (*tensor.Dense, error) {
	return nil, errors.New("decoder failed")
}

func (failCodec) Encode(_ context.Context, img *tensor.Dense) (*tensor.Dense, error) {
	return nil, errors.New("encoder failed")
}
