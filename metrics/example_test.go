package metrics_test

import (
	"fmt"

	"github.com/ugo-diffusion/ugo/metrics"
)

func ExampleFrechetDistance() {
	// Two 1-D feature sets: {0, 2} (mean 1, variance 2) and {3, 5}
	// (mean 4, variance 2). FD = (1-4)^2 + (sqrt2-sqrt2)^2 = 9.
	a, _ := metrics.FitGaussian([]float32{0, 2}, 1)
	b, _ := metrics.FitGaussian([]float32{3, 5}, 1)
	fd, _ := metrics.FrechetDistance(a, b)
	fmt.Printf("%.3f\n", fd)
	// Output: 9.000
}
