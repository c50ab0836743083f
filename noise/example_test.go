package noise_test

import (
	"fmt"

	"github.com/ugo-diffusion/ugo/noise"
)

// torch.manual_seed(0); torch.randn(2, 3) on the CPU.
func ExampleNewTorchCPU() {
	src := noise.NewTorchCPU(0)
	v := make([]float32, 6)
	src.Normal(v)
	fmt.Printf("%.4f\n", v)
	// Output:
	// [1.5410 -0.2934 -2.1788 0.5684 -1.0845 -1.3986]
}

// Initial latents as diffusers draws them with a CPU generator:
// torch.randn((1, 4, 8, 8), generator=torch.manual_seed(0)).
func ExampleNewTensor() {
	x, err := noise.NewTensor(noise.NewTorchCPU(0), 1, 4, 8, 8)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(x.Shape())
	fmt.Printf("%.4f\n", x.Data().([]float32)[:4])
	// Output:
	// (1, 4, 8, 8)
	// [-1.1258 -1.1524 -0.2506 -0.4339]
}

// torch.manual_seed(0); torch.randn(4, device="cuda"), as the AUTOMATIC1111
// webui's "NV" random source reproduces it.
func ExampleNewPhilox() {
	v := make([]float32, 4)
	noise.NewPhilox(0).Normal(v)
	fmt.Printf("%.4f\n", v)
	// Output:
	// [-0.9247 -0.4253 -2.6438 0.1452]
}

// The fast default source, for when no other tool has to be matched.
func ExampleNewPCG() {
	v := make([]float32, 100000)
	noise.NewPCG(1).Normal(v)
	var sum, sum2 float64
	for _, x := range v {
		sum += float64(x)
		sum2 += float64(x) * float64(x)
	}
	fmt.Printf("mean %.2f, variance %.2f\n", sum/float64(len(v)), sum2/float64(len(v)))
	// Output:
	// mean 0.00, variance 1.00
}

// The draw order that reproduces a diffusers DDPM run from a seed: one call
// for the initial latents, then one call of the sample's shape for each
// step that adds noise (all but the last DDPM step; every DDIM step when
// eta > 0).
func ExampleSource_drawOrder() {
	const steps = 4
	src := noise.NewTorchCPU(42)
	x, _ := noise.NewTensor(src, 1, 4, 8, 8) // initial latents x_T
	z := make([]float32, x.DataSize())
	for i := 0; i < steps; i++ {
		// ... x = step(model(x, t_i)) ...
		if i < steps-1 { // the final DDPM step (t = 0) draws no noise
			src.Normal(z) // variance noise for this step
		}
	}
	fmt.Println("draws:", 1+steps-1)
	// Output:
	// draws: 4
}
