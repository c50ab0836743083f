package guidance_test

import (
	"context"
	"fmt"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/sampler"
	"github.com/ugo-diffusion/ugo/schedule"
)

// Upsample Guidance for a rectified-flow model (SD3, FLUX: the model
// predicts v = eps - x0 of x_s = (1-s) x0 + s eps at the timestep 1000 s),
// sampled at 2x with the flow-matching Euler sampler. The low-resolution
// call runs at tau = s/(s + 2(1-s)) on (1-tau)/(1-s) times the pooled
// sample. The toy model knows its data (every image is 0.5) at every
// resolution, so guidance leaves its exact velocity unchanged and the run
// ends on 0.5.
func ExampleUpsample_flow() {
	calls := map[int]int{}
	model := ugo.DenoiserFunc(func(_ context.Context, dst, x *tensor.Dense, t []float32) error {
		calls[x.Shape()[2]]++
		s := t[0] / 1000
		d := dst.Float32s()
		for i, v := range x.Float32s() {
			d[i] = (v - 0.5) / s
		}
		return nil
	})
	opts := guidance.DefaultUpsampleOptions()
	opts.Prediction = schedule.PredictFlow
	opts.Sequential = true                       // the toy model counts calls without a lock
	sched := schedule.Linear(1000, 0.0001, 0.02) // only its length, the timestep scale, is read
	guided, err := guidance.Upsample(model, sched, opts)
	if err != nil {
		panic(err)
	}
	x, err := noise.NewTensor(noise.NewPCG(3), 1, 1, 16, 16)
	if err != nil {
		panic(err)
	}
	flow := &sampler.FlowMatchEuler{Shift: 3}
	if err := sampler.Sample(context.Background(), guided, flow, x, sampler.Options{Steps: 10}); err != nil {
		panic(err)
	}
	fmt.Printf("x[0] = %.4f, calls at 16x16: %d, at 8x8: %d\n", x.Float32s()[0], calls[16], calls[8])
	// Output:
	// x[0] = 0.5000, calls at 16x16: 10, at 8x8: 10
}
