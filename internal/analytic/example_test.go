package analytic_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo/internal/analytic"
)

// A field with correlation length 3 pixels: its samples measure about 3
// pixels, and its exact denoiser recovers the noise of a noisy sample far
// better than chance.
func Example() {
	field, err := analytic.NewField(3, 3) // lH, lW in pixels
	if err != nil {
		panic(err)
	}
	shape := []int{8, 1, 64, 64}
	n := 8 * 64 * 64
	x0 := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(make([]float32, n)))
	if err := field.Sample(x0, rand.New(rand.NewPCG(1, 2))); err != nil {
		panic(err)
	}
	l, _ := analytic.CorrelationLength(x0, 3)
	fmt.Printf("correlation length along W: %.0f px\n", l)

	// Noise the sample to abar = 0.5 under the schedule abar(t) = 1 - t/1000.
	r := rand.New(rand.NewPCG(3, 4))
	eps := make([]float32, n)
	xt := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(make([]float32, n)))
	for i, v := range x0.Data().([]float32) {
		eps[i] = float32(r.NormFloat64())
		xt.Data().([]float32)[i] = float32(math.Sqrt(0.5))*v + float32(math.Sqrt(0.5))*eps[i]
	}
	den := field.Denoiser(func(t float64) float64 { return 1 - t/1000 })
	pred := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(make([]float32, n)))
	if err := den.PredictNoise(context.Background(), pred, xt, []float32{500}); err != nil {
		panic(err)
	}
	var mse float64
	for i, p := range pred.Data().([]float32) {
		mse += float64((p - eps[i]) * (p - eps[i]))
	}
	fmt.Printf("noise prediction error: %.2f (predicting zero: 1)\n", mse/float64(n))
	// Output:
	// correlation length along W: 3 px
	// noise prediction error: 0.07 (predicting zero: 1)
}
