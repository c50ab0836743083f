package guidance_test

import (
	"context"
	"fmt"
	"math"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/internal/analytic"
	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/resize"
	"github.com/ugo-diffusion/ugo/sampler"
	"github.com/ugo-diffusion/ugo/schedule"
)

// A toy model that reports the shapes and timesteps it is called with.
func printingModel() ugo.Denoiser {
	return ugo.DenoiserFunc(func(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
		fmt.Printf("model called at %v, t = %.1f\n", x.Shape(), t[0])
		return nil
	})
}

// Upsample Guidance for a model trained on 32x32 images, sampled at 64x64:
// each step calls the model at 64x64 and, concurrently, at 32x32 at the
// SNR-matched time.
func ExampleUpsample() {
	sched := schedule.Linear(1000, 0.0001, 0.02)
	guided, err := guidance.Upsample(printingModel(), sched, guidance.DefaultUpsampleOptions())
	if err != nil {
		panic(err)
	}
	x := tensor.New(tensor.WithShape(1, 3, 64, 64), tensor.WithBacking(make([]float32, 3*64*64)))
	eps := tensor.New(tensor.WithShape(1, 3, 64, 64), tensor.WithBacking(make([]float32, 3*64*64)))
	if err := guided.PredictNoise(context.Background(), eps, x, []float32{500}); err != nil {
		panic(err)
	}
	// The two calls run concurrently, so their order varies.
	// Unordered output:
	// model called at (1, 3, 64, 64), t = 500.0
	// model called at (1, 3, 32, 32), t = 365.9
}

// Guidance only for the noisy first 30% of sampling, 1.5x stronger, on a
// panorama twice as wide as the training images: outside the window the
// low-resolution call is skipped.
func ExampleUpsampleOptions() {
	sched := schedule.Linear(1000, 0.0001, 0.02)
	opts := guidance.DefaultUpsampleOptions()
	opts.Factors = []int{1, 2}
	opts.Theta = 1.5
	opts.Eta = 0.3
	opts.TimeMatching = schedule.Nearest
	guided, err := guidance.Upsample(printingModel(), sched, opts)
	if err != nil {
		panic(err)
	}
	x := tensor.New(tensor.WithShape(1, 4, 32, 64), tensor.WithBacking(make([]float32, 4*32*64)))
	eps := tensor.New(tensor.WithShape(1, 4, 32, 64), tensor.WithBacking(make([]float32, 4*32*64)))
	for _, t := range []float32{900, 500} {
		if err := guided.PredictNoise(context.Background(), eps, x, []float32{t}); err != nil {
			panic(err)
		}
	}
	// Unordered output:
	// model called at (1, 4, 32, 64), t = 900.0
	// model called at (1, 4, 32, 32), t = 861.0
	// model called at (1, 4, 32, 64), t = 500.0
}

// Classifier-free guidance inside Upsample Guidance: the guidances compose
// by wrapping.
func ExampleCFG() {
	cond := ugo.DenoiserFunc(func(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
		for i := range dst.Float32s() {
			dst.Float32s()[i] = 1
		}
		return nil
	})
	uncond := ugo.DenoiserFunc(func(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
		for i := range dst.Float32s() {
			dst.Float32s()[i] = 0.5
		}
		return nil
	})
	sched := schedule.Linear(1000, 0.0001, 0.02)
	guided, err := guidance.Upsample(guidance.CFG(cond, uncond, 7.5), sched, guidance.DefaultUpsampleOptions())
	if err != nil {
		panic(err)
	}
	x := tensor.New(tensor.WithShape(1, 4, 8, 8), tensor.WithBacking(make([]float32, 4*8*8)))
	eps := tensor.New(tensor.WithShape(1, 4, 8, 8), tensor.WithBacking(make([]float32, 4*8*8)))
	if err := guided.PredictNoise(context.Background(), eps, x, []float32{999}); err != nil {
		panic(err)
	}
	// CFG gives 0.5 + 7.5*(1-0.5) = 4.25 at both resolutions; the guidance
	// term then adds 4.25/sqrt(4) - D(4.25) = -2.125.
	fmt.Println(eps.Float32s()[0])
	// Output: 2.125
}

// Structure Guidance is Denoiser middleware: it wraps the model the
// sampler calls. Here it keeps an SDEdit refinement close to the low
// frequencies of its (bilinear-upscaled) starting point.
func ExampleStructureGuidance() {
	sched := schedule.Linear(1000, 1e-4, 0.02)
	field, _ := analytic.NewField(2, 2)
	model := field.Denoiser(sched.AlphaBar)
	ddim, _ := sampler.NewDDIM(schedule.DefaultConfig())
	ddim.Schedule = sched

	small := tensor.New(tensor.WithShape(1, 1, 8, 8), tensor.WithBacking(make([]float32, 64)))
	for i := range small.Float32s() {
		small.Float32s()[i] = float32(math.Sin(float64(i)))
	}
	ref, _ := resize.To(resize.Bilinear, small, 16, 16)

	plan, _ := ddim.Trajectory(10) // refine the last 5 of 10 steps
	g, err := guidance.StructureGuidance(model, sched, ref, guidance.StructureOptions{
		From: plan.Timesteps[5], To: plan.Timesteps[9],
	})
	if err != nil {
		panic(err)
	}
	x := tensor.New(tensor.WithShape(1, 1, 16, 16), tensor.WithBacking(append([]float32(nil), ref.Float32s()...)))
	err = sampler.Sample(context.Background(), g, ddim, x, sampler.Options{
		Steps: 10, Strength: 0.5, Noise: noise.TorchSeeds(7)[0],
	})
	fmt.Println(x.Shape(), err)
	// Output:
	// (1, 1, 16, 16) <nil>
}
