package pipeline_test

import (
	"context"
	"fmt"
	"log"

	"github.com/ugo-diffusion/ugo/onnx"
	"github.com/ugo-diffusion/ugo/pipeline"
)

// Generate an image at twice the model's training size with Upsample
// Guidance. The folder here is the tiny random-weight test pipeline, whose
// configs say nothing of the training size, so it is set to 64 pixels.
func ExampleModel_Generate() {
	m, err := pipeline.Load("../testdata/sdtiny/fp32",
		pipeline.WithSampleSize(64), pipeline.WithONNXOptions(onnx.WithThreads(1, 1)))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	res, err := m.Generate(context.Background(), pipeline.Request{
		Prompt:         "a photo of a cat",
		NegativePrompt: "blurry",
		Width:          128, Height: 128,
		Steps: 10, Seed: 42,
	})
	if err != nil {
		log.Fatal(err)
	}
	p := res.Settings
	fmt.Println("latents:", p.Latent)
	fmt.Println("timesteps:", p.Timesteps)
	fmt.Printf("upsample guidance: factors %v, theta %g, eta %g, on %d of %d steps\n", p.Upsample.Factors, p.Upsample.Theta, p.Upsample.Eta, p.GuidedSteps, p.Steps)
	fmt.Println("image:", res.Pixels.Shape())
	// Output:
	// latents: [1 4 16 16]
	// timesteps: [901 801 701 601 501 401 301 201 101 1]
	// upsample guidance: factors [2 2], theta 1.2, eta 0.6, on 6 of 10 steps
	// image: (1, 3, 128, 128)
}

// Resolve a request without running it: the defaults, the guidance factors
// and the VAE tiling for a 2048x2048 image from a 512 model.
func ExampleModel_Resolve() {
	m, err := pipeline.Load("../testdata/sdtiny/fp16")
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	p, err := m.Resolve(pipeline.Request{Prompt: "a lighthouse", Width: 2048, Height: 2048})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.Sampler, p.Steps, "steps, cfg", p.GuidanceScale)
	fmt.Println("factors", p.Upsample.Factors, "guided steps", p.GuidedSteps)
	fmt.Println("tiles per image", p.TilesPerImage)
	// Output:
	// ddim 50 steps, cfg 7.5
	// factors [4 4] guided steps 30
	// tiles per image 25
}
