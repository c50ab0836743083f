package sampler_test

import (
	"context"
	"fmt"
	"log"
	"math"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/sampler"
	"github.com/ugo-diffusion/ugo/schedule"
)

// exactModel is the exact noise predictor for data that is the constant c
// everywhere: eps = (x_t - sqrt(abar_t) c) / sqrt(1 - abar_t), at any
// (fractional) timestep.
func exactModel(s *schedule.Schedule, c float64) ugo.Denoiser {
	return ugo.DenoiserFunc(func(_ context.Context, dst, x *tensor.Dense, t []float32) error {
		a := s.AlphaBar(float64(t[0]))
		d := dst.Float32s()
		for i, v := range x.Float32s() {
			d[i] = float32((float64(v) - math.Sqrt(a)*c) / math.Sqrt(1-a))
		}
		return nil
	})
}

// DPM-Solver++(2M) with Karras sigmas ("DPM++ 2M Karras") on Stable
// Diffusion's schedule: 20 steps, seeded like torch.manual_seed(42).
func ExampleDPMSolverMultistep() {
	cfg := schedule.DefaultConfig()
	cfg.BetaSchedule, cfg.BetaStart, cfg.BetaEnd = schedule.BetaScaledLinear, 0.00085, 0.012
	dpm, err := sampler.NewDPMSolverMultistep(cfg)
	if err != nil {
		log.Fatal(err)
	}
	dpm.UseKarrasSigmas = true

	trajectory, err := dpm.Trajectory(20)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("timesteps %v ... %v\n", trajectory.Timesteps[:4], trajectory.Timesteps[16:])
	fmt.Printf("sigmas %.3f ... %.3f\n", trajectory.Sigmas[:3], trajectory.Sigmas[18:])

	src := noise.NewTorchCPU(42)
	x, err := noise.NewTensor(src, 1, 4, 8, 8) // the initial latents
	if err != nil {
		log.Fatal(err)
	}
	if err := sampler.Sample(context.Background(), exactModel(dpm.Schedule, -0.25), dpm, x, sampler.Options{Steps: 20, Noise: src}); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("final x[0] = %.3f\n", x.Float32s()[0])
	// Output:
	// timesteps [999 962 921 876] ... [15 6 2 0]
	// sigmas [14.615 11.725 9.340] ... [0.048 0.029 0.000]
	// final x[0] = -0.250
}

// Euler on diffusers' default linspace spacing calls the model at
// fractional timesteps, on the sample divided by sqrt(sigma^2+1); the run
// starts from noise scaled by the largest sigma.
func ExampleEuler() {
	s := schedule.ScaledLinear(1000, 0.00085, 0.012)
	euler := &sampler.Euler{Schedule: s} // Spacing "" = linspace
	trajectory, err := euler.Trajectory(8)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("initial noise sigma %.3f\n", trajectory.InitNoiseSigma)

	src := noise.NewPCG(1)
	x, err := noise.NewTensor(src, 1, 1, 4, 4)
	if err != nil {
		log.Fatal(err)
	}
	err = sampler.Sample(context.Background(), exactModel(s, 0.5), euler, x, sampler.Options{
		Steps: 8,
		Progress: func(p sampler.ProgressInfo) error {
			if p.Step%3 == 0 {
				fmt.Printf("step %d: model at t=%.2f, sigma %.3f\n", p.Step, p.ModelTimestep, trajectory.Sigmas[p.Step])
			}
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("final x[0] = %.3f\n", x.Float32s()[0])
	// Output:
	// initial noise sigma 14.615
	// step 0: model at t=999.00, sigma 14.615
	// step 3: model at t=570.86, sigma 2.061
	// step 6: model at t=142.71, sigma 0.440
	// final x[0] = 0.500
}

// Euler ancestral ("Euler a") at twice a model's training resolution with
// Upsample Guidance: the guidance wraps the model and the sampler drives
// the wrapped model like any other, fractional timesteps included.
func ExampleEulerAncestral() {
	s := schedule.Linear(1000, 0.0001, 0.02)
	model := exactModel(s, 0.5) // stands for a network trained at 8x8
	opts := guidance.DefaultUpsampleOptions()
	opts.Eta = 0.6 // guidance on for the noisiest 60% of the schedule
	guided, err := guidance.Upsample(model, s, opts)
	if err != nil {
		log.Fatal(err)
	}
	ea := &sampler.EulerAncestral{Schedule: s}

	src := noise.NewTorchCPU(0)
	x, err := noise.NewTensor(src, 1, 1, 16, 16) // 2x the training grid
	if err != nil {
		log.Fatal(err)
	}
	if err := sampler.Sample(context.Background(), guided, ea, x, sampler.Options{Steps: 25, Noise: src}); err != nil {
		log.Fatal(err)
	}
	xs := x.Float32s()
	fmt.Printf("final x[0] = %.3f, x[255] = %.3f\n", xs[0], xs[255])
	// Output:
	// final x[0] = 0.500, x[255] = 0.500
}
