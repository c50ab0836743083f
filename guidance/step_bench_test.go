package guidance

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/sampler"
	"github.com/ugo-diffusion/ugo/schedule"
)

// stepCases are the shapes of the guided sampler step benchmarks: the
// Fashion-MNIST demo model at 2x and 4x (one image and a batch), and a
// Stable Diffusion 1.5 latent at 1024^2 with a CFG batch.
var stepCases = []struct {
	shape []int
	f     int
}{
	{[]int{1, 1, 56, 56}, 2},
	{[]int{1, 1, 112, 112}, 4},
	{[]int{16, 1, 56, 56}, 2},
	{[]int{16, 1, 112, 112}, 4},
	{[]int{2, 4, 128, 128}, 2},
}

// stepModes are the ways of predicting the noise in a step: the model
// alone, Upsample Guidance with concurrent calls, and with sequential ones.
var stepModes = []struct {
	name  string
	opts  func(f int) UpsampleOptions
	guide bool
}{
	{"plain", nil, false},
	{"guided", func(f int) UpsampleOptions {
		o := DefaultUpsampleOptions()
		o.Factors = []int{f, f}
		return o
	}, true},
	{"guided_seq", func(f int) UpsampleOptions {
		o := DefaultUpsampleOptions()
		o.Factors = []int{f, f}
		o.Sequential = true
		return o
	}, true},
}

// BenchmarkGuidedDDIMStep measures one step of a DDIM sampling loop (the
// noise prediction and the DDIM update, as sampler.Sample performs them)
// with an in-Go model that costs one copy, so that what remains is the
// overhead of the loop and of the guidance: pooling, the time and power
// adjustments, the second call (concurrent or not), and the combination.
// The allocations reported must be 0.
func BenchmarkGuidedDDIMStep(b *testing.B) {
	const steps = 50
	for _, sc := range stepCases {
		for _, m := range stepModes {
			b.Run(fmt.Sprintf("%v_x%d/%s", sc.shape, sc.f, m.name), func(b *testing.B) {
				var model ugo.Denoiser = copyModel{}
				if m.guide {
					var err error
					if model, err = Upsample(copyModel{}, testSchedule, m.opts(sc.f)); err != nil {
						b.Fatal(err)
					}
				}
				ddim, err := sampler.NewDDIM(schedule.DefaultConfig())
				if err != nil {
					b.Fatal(err)
				}
				ddim.Schedule = testSchedule
				plan, err := ddim.Trajectory(steps)
				if err != nil {
					b.Fatal(err)
				}
				x := randTensor(rand.New(rand.NewPCG(1, 1)), sc.shape...)
				eps := tensorOf(sc.shape...)
				xs := x.Float32s()
				next := make([]float32, len(xs))
				x0 := make([]float32, len(xs))
				scratch := make([]float32, len(xs)/sc.shape[0])
				ts := []float32{0}
				ctx := context.Background()
				step := func(i int) {
					ts[0] = plan.Timesteps[i]
					if err := model.PredictNoise(ctx, eps, x, ts); err != nil {
						b.Fatal(err)
					}
					prev := -1
					if i+1 < steps {
						prev = int(plan.Timesteps[i+1])
					}
					in := sampler.StepInput{
						Timestep: int(plan.Timesteps[i]), Prev: prev,
						ModelOutput: eps.Float32s(), Sample: xs, X0: x0,
						Batch: sc.shape[0], Scratch: scratch,
					}
					if err := ddim.StepAt(next, plan, i, in); err != nil {
						b.Fatal(err)
					}
				}
				step(0) // create the guidance's buffers
				b.SetBytes(int64(4 * len(xs)))
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					step(i)
					i = (i + 1) % steps
				}
			})
		}
	}
}

// TestGuidedSampleNoAllocPerStep checks the steady-state target of
// examples/bench on an in-Go model: a guided DDIM run allocates as much for
// 50 steps as for 5 (its buffers, once per run), concurrent or sequential.
func TestGuidedSampleNoAllocPerStep(t *testing.T) {
	for _, m := range stepModes[1:] {
		model, err := Upsample(copyModel{}, testSchedule, m.opts(2))
		if err != nil {
			t.Fatal(err)
		}
		ddim, err := sampler.NewDDIM(schedule.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		ddim.Schedule = testSchedule
		x := tensorOf(2, 1, 16, 16)
		allocs := func(steps int) float64 {
			return testing.AllocsPerRun(5, func() {
				if err := sampler.Sample(context.Background(), model, ddim, x, sampler.Options{Steps: steps}); err != nil {
					t.Fatal(err)
				}
			})
		}
		if few, many := allocs(5), allocs(50); few != many {
			t.Errorf("%s: %v allocations for 5 steps, %v for 50: something allocates per step", m.name, few, many)
		}
	}
}
