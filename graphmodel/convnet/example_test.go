package convnet_test

import (
	"context"
	"fmt"

	"github.com/ugo-diffusion/ugo/graphmodel/convnet"
	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/sampler"
	"github.com/ugo-diffusion/ugo/schedule"
)

// Train a network for a few steps on 14x14 images, then sample it at 28x28
// with Upsample Guidance: the guided sampler calls the model at 28x28 and
// at 14x14, one compiled graph each.
func Example() {
	sched := schedule.Linear(1000, 1e-4, 0.02) // DefaultConfig's schedule
	cfg := convnet.DefaultConfig()
	cfg.Width = 8
	net, err := convnet.New(cfg, 1)
	if err != nil {
		panic(err)
	}
	tr, err := convnet.NewTrainer(net, convnet.TrainConfig{Batch: 4, Height: 14, Width: 14, Seed: 1})
	if err != nil {
		panic(err)
	}
	images := make([]float32, 4*14*14) // a batch of blank (mid-grey) images
	for range 3 {
		if _, err := tr.Step(images); err != nil {
			panic(err)
		}
	}
	fmt.Println("trained", tr.Steps(), "steps of a network of", net.NumParams(), "parameters")

	model, err := net.Denoiser()
	if err != nil {
		panic(err)
	}
	guided, err := guidance.Upsample(model, sched, guidance.DefaultUpsampleOptions())
	if err != nil {
		panic(err)
	}
	x, err := noise.NewTensor(noise.NewTorchCPU(1), 2, 1, 28, 28)
	if err != nil {
		panic(err)
	}
	if err := sampler.Sample(context.Background(), guided, &sampler.DDIM{Schedule: sched}, x, sampler.Options{Steps: 3}); err != nil {
		panic(err)
	}
	fmt.Println("sampled", x.Shape())
	fmt.Printf("%+v\n", model.Stats())
	// Output:
	// trained 3 steps of a network of 8386 parameters
	// sampled (2, 1, 28, 28)
	// {Compiles:2 Hits:4 Shapes:2}
}
