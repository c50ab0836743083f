package ugo_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"testing"

	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/internal/ortest"
	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/onnx"
	"github.com/ugo-diffusion/ugo/sampler"
	"github.com/ugo-diffusion/ugo/schedule"
)

func TestMain(m *testing.M) {
	// Let the example find the ONNX Runtime library `make ort` installs.
	ortest.UseRepoLibrary()
	os.Exit(m.Run())
}

// The README's quick start: the shipped Fashion-MNIST model, trained at
// 28x28, sampled at 56x56 with Upsample Guidance and DDIM.
func Example() {
	ctx := context.Background()

	model, err := onnx.Open("testdata/models/fashion_unet.onnx") // trained at 28x28
	if err != nil {
		log.Fatal(err)
	}
	defer model.Close()

	// diffusers' DDIMScheduler defaults: the linear schedule the model was
	// trained with, x0 clipped to [-1, 1].
	ddim, err := sampler.NewDDIM(schedule.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	ddim.UseClippedModelOutput = true // take the whole update from the clipped x0

	opts := guidance.DefaultUpsampleOptions() // 2x2, theta 1, on throughout
	guided, err := guidance.Upsample(model, ddim.Schedule, opts)
	if err != nil {
		log.Fatal(err)
	}
	// Pixel model: keep x0 in [-1, 1] block-wise, a hook on the sampler.
	clamp, err := guidance.BlockClamp(ddim.Schedule, opts, 1)
	if err != nil {
		log.Fatal(err)
	}

	// torch.manual_seed(42); torch.randn(4, 1, 56, 56)
	x, err := noise.NewTensor(noise.NewTorchCPU(42), 4, 1, 56, 56)
	if err != nil {
		log.Fatal(err)
	}
	if err := sampler.Sample(ctx, guided, ddim, x, sampler.Options{Steps: 50, Hook: clamp}); err != nil {
		log.Fatal(err)
	}
	fmt.Println("samples:", x.Shape()) // 4 images at 56x56, values in [-1, 1]
	// Output: samples: (4, 1, 56, 56)
}
