package sampler_test

import (
	"context"
	"fmt"
	"log"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/sampler"
	"github.com/ugo-diffusion/ugo/schedule"
)

// A rectified-flow run as SD3 configures it (shift 3), with the exact
// velocity of data that is the constant 0.5: v = eps - x0 = (x - 0.5)/s at
// the flow level s = t/1000. The Euler steps follow the straight path from
// the noise to 0.5 exactly.
func ExampleFlowMatchEuler() {
	cfg, err := schedule.ParseConfig([]byte(`{"_class_name": "FlowMatchEulerDiscreteScheduler", "shift": 3.0}`))
	if err != nil {
		log.Fatal(err)
	}
	s, err := sampler.FromConfig(*cfg)
	if err != nil {
		log.Fatal(err)
	}
	model := ugo.DenoiserFunc(func(_ context.Context, dst, x *tensor.Dense, t []float32) error {
		level := t[0] / 1000
		d := dst.Float32s()
		for i, v := range x.Float32s() {
			d[i] = (v - 0.5) / level
		}
		return nil
	})
	x, err := noise.NewTensor(noise.NewPCG(1), 1, 1, 4, 4)
	if err != nil {
		log.Fatal(err)
	}
	err = sampler.Sample(context.Background(), model, s, x, sampler.Options{
		Steps: 8,
		Progress: func(p sampler.ProgressInfo) error {
			if p.Step%2 == 0 {
				fmt.Printf("step %d  t=%.1f  x0[0]=%.3f\n", p.Step, p.ModelTimestep, p.X0.Float32s()[0])
			}
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("final x[0]=%.3f\n", x.Float32s()[0])
	// Output:
	// step 0  t=1000.0  x0[0]=0.500
	// step 2  t=882.8  x0[0]=0.500
	// step 4  t=693.8  x0[0]=0.500
	// step 6  t=338.0  x0[0]=0.500
	// final x[0]=0.500
}
