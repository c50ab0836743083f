package upscale_test

import (
	"context"
	"fmt"
	"math"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/internal/analytic"
	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/sampler"
	"github.com/ugo-diffusion/ugo/schedule"
	"github.com/ugo-diffusion/ugo/upscale"
)

// A three-stage run, 16 -> 32 -> 64, of a model "trained" at 16x16 (the
// exact denoiser of a Gaussian field, standing in for a network): a native
// sample, a refinement at 2x with Upsample Guidance, and a ScaleDiff-style
// refinement at 4x with Latent Frequency Mixing and Structure Guidance.
func ExampleRun() {
	sched := schedule.Linear(1000, 1e-4, 0.02)
	field, _ := analytic.NewField(2, 2)
	ddim, _ := sampler.NewDDIM(schedule.DefaultConfig())
	ddim.Schedule = sched

	ug := guidance.DefaultUpsampleOptions()
	ug.Factors = nil // derived from Trained at each size
	s := upscale.Sampling{
		Model:    field.Denoiser(sched.AlphaBar),
		Schedule: sched,
		Solver:   ddim,
		Steps:    20,
		Channels: 1,
		Trained:  [2]int{16, 16},
		Noise:    noise.TorchSeeds(1, 2), // two images
	}
	outs, err := upscale.Run(context.Background(), s, nil,
		upscale.Generate{Height: 16, Width: 16},
		upscale.Refine{Height: 32, Width: 32, Strength: 0.6, Upsample: &ug},
		upscale.Refine{Height: 64, Width: 64, Strength: 0.5, Upsample: &ug,
			Mix: &upscale.MixOptions{}, Structure: &guidance.StructureOptions{}},
	)
	if err != nil {
		panic(err)
	}
	for i, x := range outs {
		fmt.Println("stage", i, x.Shape())
	}
	// Output:
	// stage 0 (2, 1, 16, 16)
	// stage 1 (2, 1, 32, 32)
	// stage 2 (2, 1, 64, 64)
}

// Latent Frequency Mixing keeps the low frequencies of one tensor and the
// high frequencies of another: mixing x with x plus a constant gives x
// back, because a constant is all low frequency.
func ExampleMixFrequencies() {
	x := tensor.New(tensor.WithShape(1, 1, 4, 4), tensor.WithBacking([]float32{
		1, 2, 3, 4,
		2, 3, 4, 5,
		3, 4, 5, 6,
		4, 5, 6, 7,
	}))
	shifted := tensor.New(tensor.WithShape(1, 1, 4, 4), tensor.WithBacking(make([]float32, 16)))
	for i, v := range x.Float32s() {
		shifted.Float32s()[i] = v + 10
	}
	mix, err := upscale.MixFrequencies(x, shifted, 0.5)
	if err != nil {
		panic(err)
	}
	worst := 0.0
	for i, v := range mix.Float32s() {
		worst = math.Max(worst, math.Abs(float64(v-x.Float32s()[i])))
	}
	fmt.Println("mix equals x to float32 rounding:", worst < 1e-5)
	// Output:
	// mix equals x to float32 rounding: true
}
