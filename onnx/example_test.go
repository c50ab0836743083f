package onnx_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo/onnx"
)

// Open a model, look at what was detected, and predict the noise of a batch.
// The runtime library comes from ONNXRUNTIME_SHARED_LIBRARY_PATH (or
// WithLibraryPath, or the system).
func ExampleOpen() {
	m, err := onnx.Open("../testdata/onnx/dynamic.onnx", onnx.WithThreads(1, 1))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	info := m.Info()
	fmt.Println("sample:", info.Sample)
	fmt.Println("timestep:", info.Timestep, info.TimestepShape)
	fmt.Println("output:", info.Output.Name)
	fmt.Println("any batch:", info.DynamicBatch(), "any size:", info.DynamicSize())

	x := tensor.New(tensor.WithShape(2, 2, 56, 56), tensor.Of(tensor.Float32))
	eps := tensor.New(tensor.WithShape(2, 2, 56, 56), tensor.Of(tensor.Float32))
	// Fractional timesteps are fine for a float-timestep model.
	if err := m.PredictNoise(context.Background(), eps, x, []float32{999, 412.5}); err != nil {
		log.Fatal(err)
	}
	fmt.Println("eps:", eps.Shape())
	// Output:
	// sample: x[?,2,?,?]float32
	// timestep: t[?]float32 [N]
	// output: eps
	// any batch: true any size: true
	// eps: (2, 2, 56, 56)
}

// A fixed-shape export cannot run at another resolution: CheckShape (and
// PredictNoise) say which dimension is fixed.
func ExampleModelInfo_CheckShape() {
	m, err := onnx.Open("../testdata/onnx/fixed.onnx")
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	fmt.Println(m.Info().CheckShape([]int{1, 2, 8, 8}))
	fmt.Println(m.Info().CheckShape([]int{1, 2, 16, 16}))
	// Output:
	// <nil>
	// ugo: x has shape [1 2 16 16], want H = 8: model input x[1,2,8,8]float32 has a fixed height
}

// Bind a text embedding to a diffusers-style UNet and combine conditional
// and unconditional predictions in one batched session call.
func ExampleBatchedCFG() {
	m, err := onnx.Open("../testdata/onnx/extra.onnx")
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	fmt.Println("extra inputs:", m.Info().Extra)

	// Embeddings [1, L, D]: batch 1 is repeated over the sample batch.
	text := tensor.New(tensor.WithShape(1, 3, 4), tensor.WithBacking([]float32{1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 0, 0}))
	empty := tensor.New(tensor.WithShape(1, 3, 4), tensor.Of(tensor.Float32))
	cond, err := m.With("encoder_hidden_states", text)
	if err != nil {
		log.Fatal(err)
	}
	uncond, err := m.With("encoder_hidden_states", empty)
	if err != nil {
		log.Fatal(err)
	}
	cfg, err := onnx.BatchedCFG(cond, uncond, 7.5)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("one call per step:", cfg.Batched())

	x := tensor.New(tensor.WithShape(1, 2, 32, 32), tensor.Of(tensor.Float32))
	eps := tensor.New(tensor.WithShape(1, 2, 32, 32), tensor.Of(tensor.Float32))
	if err := cfg.PredictNoise(context.Background(), eps, x, []float32{500}); err != nil {
		log.Fatal(err)
	}
	fmt.Println("eps:", eps.Shape())
	// Output:
	// extra inputs: [encoder_hidden_states[?,?,4]float32]
	// one call per step: true
	// eps: (1, 2, 32, 32)
}

// A -device flag: the names programs take, and the providers they ask for.
// Open with WithFallback(FallbackCPU) runs on the CPU, with a logged
// warning, where the GPU cannot be used; without it Open fails with an error
// wrapping ErrProviderUnavailable.
func ExampleDevice() {
	for _, name := range []string{"cpu", "cuda:1", "webgpu", "webgpu:1"} {
		d, err := onnx.ParseDevice(name)
		if err != nil {
			fmt.Println(errors.Is(err, onnx.ErrInvalidDevice), err)
			continue
		}
		fmt.Printf("%s: kind %s, GPU %d, %d option(s)\n", d, d.Kind, d.ID, len(d.Options()))
	}

	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	var dev onnx.Device
	fs.Var(&dev, "device", "cpu, cuda[:N], tensorrt[:N] or webgpu")
	if err := fs.Parse([]string{"-device", "tensorrt:2"}); err != nil {
		log.Fatal(err)
	}
	fmt.Println("-device", dev)
	// Output:
	// cpu: kind cpu, GPU 0, 0 option(s)
	// cuda:1: kind cuda, GPU 1, 1 option(s)
	// webgpu: kind webgpu, GPU 0, 1 option(s)
	// true onnx: invalid device "webgpu:1": only cuda and tensorrt take a device index
	// -device tensorrt:2
}

// Upsample Guidance at 2x calls the model at two sizes every step; with
// WithShapeSessions each size gets a session of its own, created on its
// first call, in which ONNX Runtime knows every shape.
func ExampleWithShapeSessions() {
	m, err := onnx.Open("../testdata/models/fashion_unet.onnx", onnx.WithThreads(1, 1), onnx.WithShapeSessions(2))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	for _, side := range []int{56, 28, 56} {
		x := tensor.New(tensor.WithShape(1, 1, side, side), tensor.Of(tensor.Float32))
		eps := tensor.New(tensor.WithShape(1, 1, side, side), tensor.Of(tensor.Float32))
		if err := m.PredictNoise(context.Background(), eps, x, []float32{999}); err != nil {
			log.Fatal(err)
		}
	}
	for _, s := range m.ShapeSessions() {
		fmt.Println(s.Inputs, s.Err)
	}
	// Output:
	// [x[1,1,56,56]float32 t[1]float32] <nil>
	// [x[1,1,28,28]float32 t[1]float32] <nil>
}
