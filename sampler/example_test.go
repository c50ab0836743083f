package sampler_test

import (
	"context"
	"fmt"
	"log"
	"math"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/sampler"
	"github.com/ugo-diffusion/ugo/schedule"
)

// A DDIM run of 20 steps with a model that knows the data exactly: every
// training image is the constant 0.5, so the exact noise prediction is
// eps = (x - sqrt(abar_t) 0.5) / sqrt(1 - abar_t).
func ExampleDDIM() {
	cfg := schedule.DefaultConfig() // diffusers' defaults: linear betas, T = 1000
	ddim, err := sampler.NewDDIM(cfg)
	if err != nil {
		log.Fatal(err)
	}
	sched := ddim.Schedule
	model := ugo.DenoiserFunc(func(_ context.Context, dst, x *tensor.Dense, t []float32) error {
		a := sched.AlphaBar(float64(t[0]))
		d := dst.Float32s()
		for i, v := range x.Float32s() {
			d[i] = float32((float64(v) - math.Sqrt(a)*0.5) / math.Sqrt(1-a))
		}
		return nil
	})

	src := noise.NewPCG(1)
	x, err := noise.NewTensor(src, 2, 1, 8, 8) // initial noise x_T
	if err != nil {
		log.Fatal(err)
	}
	err = sampler.Sample(context.Background(), model, ddim, x, sampler.Options{
		Steps: 20,
		Noise: src,
		Progress: func(p sampler.ProgressInfo) error {
			if p.Step%5 == 0 {
				fmt.Printf("step %2d  t=%3d  x0[0]=%.3f\n", p.Step, p.Timestep, p.X0.Float32s()[0])
			}
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	xs := x.Float32s()
	fmt.Printf("final x[0]=%.3f x[last]=%.3f\n", xs[0], xs[len(xs)-1])
	// Output:
	// step  0  t=950  x0[0]=0.500
	// step  5  t=700  x0[0]=0.500
	// step 10  t=450  x0[0]=0.500
	// step 15  t=200  x0[0]=0.500
	// final x[0]=0.500 x[last]=0.500
}
