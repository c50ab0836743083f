package upscale

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/sampler"
	"github.com/ugo-diffusion/ugo/tiling"
)

// demoSolvers are the solvers the DemoFusion identities run with.
func demoSolvers() map[string]sampler.Solver {
	return map[string]sampler.Solver{
		"ddim":    ddim(),
		"euler":   &sampler.Euler{Schedule: testSchedule},
		"dpm2m":   &sampler.DPMSolverMultistep{Schedule: testSchedule, LowerOrderFinal: true},
		"euler_a": &sampler.EulerAncestral{Schedule: testSchedule},
	}
}

// TestDemoFusionWithoutPathsIsRefine: with both global paths off (weight 0,
// or dilation 1 for the dilated path) the stage is Refine at strength 1,
// bit for bit, with and without Upsample Guidance, for every solver.
func TestDemoFusionWithoutPathsIsRefine(t *testing.T) {
	model := pointwise{0.4, 0.3}
	x := randTensor(rand.New(rand.NewPCG(5, 6)), 3, 1, 8, 8)
	for name, solver := range demoSolvers() {
		for _, ug := range []bool{false, true} {
			s := testSampling(model)
			s.Solver = solver
			ref := Refine{Height: 16, Width: 16, Strength: 1}
			off := []DemoFusion{{Height: 16, Width: 16}, {Height: 16, Width: 16, Dilated: 1, Dilation: 1}}
			if ug {
				ref.Upsample = ugOptions()
				for i := range off {
					off[i].Upsample = ugOptions()
				}
			}
			if name == "ddim" {
				// The local path in tiles, as DemoFusion's.
				tile := &tiling.Options{Size: [2]int{8, 8}}
				ref.Tile = tile
				off = append(off, DemoFusion{Height: 16, Width: 16, Upsample: ref.Upsample, Tile: tile})
			}
			want, err := ref.Run(context.Background(), &s, x)
			require.NoError(t, err)
			for _, st := range off {
				if st.Tile == nil && ref.Tile != nil {
					continue
				}
				s := testSampling(model)
				s.Solver = solver
				got, err := st.Run(context.Background(), &s, x)
				require.NoError(t, err)
				require.Equal(t, want.Float32s(), got.Float32s(), "%s, UG %v, %+v", name, ug, st)
			}
		}
	}
}

// TestDemoFusionSkipResidual checks the skip-residual hook against the
// formula: at every step after the first, x becomes (1 - c1) x + c1 times
// the reference noised to the step's level (the solver's AddNoiseAt),
// c1 = cosf(t)^3; the first step starts from the noised reference.
func TestDemoFusionSkipResidual(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const n = 64
	ref, z := make([]float32, n), make([]float32, n)
	for i := range ref {
		ref[i], z[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
	}
	for name, solver := range demoSolvers() {
		p, err := solver.Trajectory(10)
		require.NoError(t, err)
		h := &skipResidual{ref: ref, z: z, buf: make([]float32, n), weight: 1, alpha: 3, T: 1000}
		noised := make([]float32, n)
		for i := range p.Len() + 1 {
			at := sampler.HookStep{Step: i, Steps: p.Len(), Trajectory: p, Solver: solver, Shape: []int{1, 1, 8, 8}}
			x := make([]float32, n)
			for j := range x {
				x[j] = float32(r.NormFloat64())
			}
			got := append([]float32(nil), x...)
			require.NoError(t, h.Sample(context.Background(), at, got))
			if i == p.Len() {
				require.Equal(t, x, got, "%s: the final sample is left alone", name)
				continue
			}
			require.NoError(t, solver.AddNoiseAt(noised, ref, z, p, i))
			c1 := 1.0
			if i > 0 {
				c1 = math.Pow(0.5*(1+math.Cos(math.Pi*(1000-float64(p.Timesteps[i]))/1000)), 3)
			}
			for j := range x {
				want := (1-c1)*float64(x[j]) + c1*float64(noised[j])
				require.InDelta(t, want, got[j], 1e-5*(1+math.Abs(want)), "%s step %d", name, i)
			}
		}
	}
}

// TestDilatedPathPlacement: with the smoothing off and a model that
// works element by element, each sub-grid's prediction lands back where
// its elements came from, so the blended prediction is the model's own
// (to rounding), at every weight, for shared and per-image timesteps.
func TestDilatedPathPlacement(t *testing.T) {
	model := pointwise{0.6, 0.5}
	x := randTensor(rand.New(rand.NewPCG(3, 4)), 2, 3, 12, 18)
	for _, s := range []int{2, 3, 6} {
		for _, ts := range [][]float32{{700}, {900, 300}} {
			d := &dilated{local: model, plain: model, s: s, weight: 1, alpha2: 1, sigma: -1, T: 1000}
			got, want := newTensor(2, 3, 12, 18), newTensor(2, 3, 12, 18)
			require.NoError(t, d.PredictNoise(context.Background(), got, x, ts))
			require.NoError(t, model.PredictNoise(context.Background(), want, x, ts))
			for i, v := range want.Float32s() {
				require.InDelta(t, v, got.Float32s()[i], 1e-6*(1+math.Abs(float64(v))), "s %d, t %v, element %d", s, ts, i)
			}
		}
	}
	// A model that depends on position (here: on the sub-image's own
	// grid) does see the sub-grids: the blend differs.
	pos := ugo.DenoiserFunc(func(_ context.Context, dst, x *tensor.Dense, _ []float32) error {
		w := x.Shape()[3]
		for i := range dst.Float32s() {
			dst.Float32s()[i] = float32(i%w) / float32(w)
		}
		return nil
	})
	d := &dilated{local: pos, plain: pos, s: 2, weight: 1, alpha2: 1, sigma: -1, T: 1000}
	x4 := randTensor(rand.New(rand.NewPCG(9, 9)), 1, 1, 4, 4)
	got := newTensor(1, 1, 4, 4)
	// At t = T the dilated path has all the weight: element (y, x) comes
	// from column x/2 of sub-image (y%2, x%2), two columns wide.
	require.NoError(t, d.PredictNoise(context.Background(), got, x4, []float32{1000}))
	for i, v := range got.Float32s() {
		col := i % 4
		require.Equal(t, float32((col/2)%2)/2, v, "element %d", i)
	}
}

// TestDilatedSmoothing checks the Gaussian smoothing: its kernel sums to
// one, a constant image stays constant, and the result keeps each image's
// mean and standard deviation while lowering its roughness.
func TestDilatedSmoothing(t *testing.T) {
	d := &dilated{s: 3}
	d.buffers([]int{2, 2, 9, 9})
	x := randTensor(rand.New(rand.NewPCG(4, 4)), 2, 2, 9, 9).Float32s()
	out := make([]float32, len(x))
	d.gaussian(out, x, 2, 2, 9, 9, 0.8)
	var ksum float64
	for _, k := range d.kernel {
		ksum += float64(k)
	}
	require.InDelta(t, 1, ksum, 1e-6)
	require.Len(t, d.kernel, 5)
	rough := func(v []float32) float64 {
		var s float64
		for i := 1; i < len(v); i++ {
			s += math.Abs(float64(v[i] - v[i-1]))
		}
		return s
	}
	per := 2 * 9 * 9
	for b := range 2 {
		mx, sx := meanStd(x[b*per : (b+1)*per])
		mo, so := meanStd(out[b*per : (b+1)*per])
		require.InDelta(t, mx, mo, 1e-5)
		require.InDelta(t, sx, so, 1e-5)
		require.Less(t, rough(out[b*per:(b+1)*per]), rough(x[b*per:(b+1)*per])/1.5)
	}
	flat := make([]float32, len(x))
	for i := range flat {
		flat[i] = 0.25
	}
	d.gaussian(out, flat, 2, 2, 9, 9, 0.8)
	for _, v := range out {
		require.Equal(t, float32(0.25), v)
	}
}

// TestDemoFusionStages runs the progressive chain Generate 8 -> DemoFusion
// 16 -> DemoFusion 24 with the paper's settings, plain and with Upsample
// Guidance: the outputs are finite, of the right size, and differ from
// the runs without the global paths.
func TestDemoFusionStages(t *testing.T) {
	model := pointwise{0.4, 0.3}
	for _, ug := range []bool{false, true} {
		run := func(paths bool) []*tensor.Dense {
			s := testSampling(model)
			st16, st24 := DefaultDemoFusion(16, 16), DefaultDemoFusion(24, 24)
			if !paths {
				st16.Skip, st16.Dilated, st24.Skip, st24.Dilated = 0, 0, 0, 0
			}
			if ug {
				st16.Upsample, st24.Upsample = ugOptions(), ugOptions()
			}
			outs, err := Run(context.Background(), s, nil, Generate{Height: 8, Width: 8}, st16, st24)
			require.NoError(t, err)
			return outs
		}
		with, without := run(true), run(false)
		require.Equal(t, []int{3, 1, 24, 24}, []int(with[2].Shape()))
		require.Equal(t, -1, ugo.FirstNonFinite(with[2].Float32s()))
		require.Equal(t, with[0].Float32s(), without[0].Float32s())
		require.NotEqual(t, with[2].Float32s(), without[2].Float32s())
	}
}

// TestDemoFusionErrors checks the refused settings.
func TestDemoFusionErrors(t *testing.T) {
	x := randTensor(rand.New(rand.NewPCG(5, 6)), 3, 1, 8, 8)
	nan := math.NaN()
	for _, c := range []struct {
		name string
		st   DemoFusion
		mod  func(*Sampling)
	}{
		{"zero size", DemoFusion{Height: 0, Width: 16}, nil},
		{"negative skip", DemoFusion{Height: 16, Width: 16, Skip: -1}, nil},
		{"skip above 1", DemoFusion{Height: 16, Width: 16, Skip: 2}, nil},
		{"NaN alpha", DemoFusion{Height: 16, Width: 16, Alpha1: nan}, nil},
		{"NaN sigma", DemoFusion{Height: 16, Width: 16, Sigma: nan}, nil},
		{"negative dilation", DemoFusion{Height: 16, Width: 16, Dilated: 1, Dilation: -2}, nil},
		{"dilation does not divide", DemoFusion{Height: 16, Width: 16, Dilated: 1, Dilation: 3}, nil},
		{"no trained size", DemoFusion{Height: 16, Width: 16, Dilated: 1}, func(s *Sampling) { s.Trained = [2]int{} }},
		{"height not a multiple", DemoFusion{Height: 12, Width: 16, Dilated: 1}, nil},
		{"no schedule", DemoFusion{Height: 16, Width: 16}, func(s *Sampling) { s.Schedule = nil }},
	} {
		s := testSampling(pointwise{0.4, 0.3})
		if c.mod != nil {
			c.mod(&s)
		}
		_, err := c.st.Run(context.Background(), &s, x)
		require.Error(t, err, c.name)
	}
	s := testSampling(pointwise{0.4, 0.3})
	_, err := DefaultDemoFusion(16, 16).Run(context.Background(), &s, randTensor(rand.New(rand.NewPCG(1, 1)), 2, 1, 8, 8))
	require.Error(t, err, "a batch that is not the noise sources'")
}
