package upscale

import (
	"context"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/sampler"
	"github.com/ugo-diffusion/ugo/schedule"
)

type nilModel struct{ a float32 }

func (m *nilModel) PredictNoise(context.Context, *tensor.Dense, *tensor.Dense, []float32) error {
	_ = m.a
	return nil
}

// TestHostileUpscale feeds the stages and filters hostile tensors, sizes
// and Sampling values: each is an error, never a panic, a hang or an
// allocation beyond ugo.MemoryLimit.
func TestHostileUpscale(t *testing.T) {
	ctx := context.Background()
	transposed := newTensor(1, 1, 2, 3)
	require.NoError(t, transposed.T(0, 1, 3, 2))
	nan := newTensor(1, 1, 4, 4)
	nan.Float32s()[3] = float32(math.NaN())
	tensors := map[string]*tensor.Dense{"nil": nil, "zero": {}, "transposed": transposed, "rank 1": newTensor(4),
		"float64": tensor.New(tensor.WithShape(1, 1, 2, 2), tensor.Of(tensor.Float64))}
	tried := 0
	fail := func(what string, err error) {
		t.Helper()
		tried++
		if assert.Error(t, err, what) {
			assert.NotContains(t, err.Error(), "%!", what)
		}
	}
	for name, x := range tensors {
		_, err := LowPass(x, 0.5)
		fail("LowPass "+name, err)
		_, err = MixFrequencies(x, newTensor(1, 1, 4, 4), 0.5)
		fail("MixFrequencies low "+name, err)
		_, err = MixFrequencies(newTensor(1, 1, 4, 4), x, 0.5)
		fail("MixFrequencies high "+name, err)
		_, err = Interpolate{Height: 8, Width: 8}.Run(ctx, nil, x)
		fail("Interpolate "+name, err)
	}
	for _, sf := range []float64{-1, math.NaN(), math.Inf(1), 2} {
		_, err := LowPass(newTensor(1, 1, 4, 4), sf)
		fail("LowPass cutoff", err)
	}
	for _, hw := range [][2]int{{0, 8}, {8, -1}, {1 << 20, 1 << 20}} {
		_, err := Interpolate{Height: hw[0], Width: hw[1]}.Run(ctx, nil, newTensor(1, 1, 4, 4))
		fail("Interpolate size", err)
	}

	good := func() Sampling {
		return Sampling{Model: pointwise{a: 0.5, b: 0.1}, Solver: ddim(), Steps: 2, Channels: 1, Schedule: testSchedule,
			Noise: []noise.Source{noise.NewPCG(1)}}
	}
	var typedNil *nilModel
	var nilSolver *sampler.DDIM
	var nilPCG *noise.PCG
	for name, change := range map[string]func(*Sampling){
		"no model":         func(s *Sampling) { s.Model = nil },
		"typed nil model":  func(s *Sampling) { s.Model = typedNil },
		"no solver":        func(s *Sampling) { s.Solver = nil },
		"typed nil solver": func(s *Sampling) { s.Solver = nilSolver },
		"zero schedule":    func(s *Sampling) { s.Schedule = &schedule.Schedule{} },
		"no noise":         func(s *Sampling) { s.Noise = nil },
		"nil noise":        func(s *Sampling) { s.Noise = []noise.Source{nil} },
		"typed nil noise":  func(s *Sampling) { s.Noise = []noise.Source{nilPCG} },
		"zero steps":       func(s *Sampling) { s.Steps = 0 },
		"no channels":      func(s *Sampling) { s.Channels = 0 },
		"huge channels":    func(s *Sampling) { s.Channels = 1 << 30 },
		"negative batch":   func(s *Sampling) { s.Batch = -1 },
		"huge batch":       func(s *Sampling) { s.Batch = 1 << 40 },
		"trained -1":       func(s *Sampling) { s.Trained = [2]int{-1, 4} },
	} {
		s := good()
		change(&s)
		_, err := Run(ctx, s, nil, Generate{Height: 8, Width: 8})
		fail("Sampling "+name, err)
	}
	for _, hw := range [][2]int{{0, 8}, {8, 0}, {-8, 8}, {1 << 20, 1 << 20}, {1 << 31, 1 << 31}} {
		_, err := Run(ctx, good(), nil, Generate{Height: hw[0], Width: hw[1]})
		fail("Generate size", err)
	}
	_, err := Run(ctx, good(), nil)
	fail("no stages", err)
	t.Logf("%d hostile inputs", tried)
}
