package resample_test

import (
	"fmt"

	"github.com/ugo-diffusion/ugo/internal/resample"
)

// Pool a 1x1x2x4 image by 2 along H and W, then repeat it back.
func ExamplePooling() {
	plan, err := resample.NewPooling([]int{1, 1, 2, 4}, []int{2, 2})
	if err != nil {
		panic(err)
	}
	x := []float32{
		1, 2, 10, 20,
		3, 4, 30, 40,
	}
	low := make([]float32, plan.LowLen())
	plan.Pool(low, x, 1)
	fmt.Println("D(x) =", low, "shape", plan.LowShape(nil, 4, 1, 1), "k =", plan.K())
	up := make([]float32, plan.HighLen())
	plan.Repeat(up, low)
	fmt.Println("U(D(x)) =", up)

	_, err = resample.NewPooling([]int{1, 1, 3, 4}, []int{2, 2})
	fmt.Println(err)
	// Output:
	// D(x) = [2.5 25] shape [1 1 1 2] k = 4
	// U(D(x)) = [2.5 2.5 25 25 2.5 2.5 25 25]
	// resample: axis H of shape [1 1 3 4] has size 3, not divisible by its factor 2
}
