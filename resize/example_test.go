package resize_test

import (
	"fmt"
	"strings"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo/resize"
)

// A plan is computed once for a pair of sizes and then resizes any number
// of planes: here one 2x2 image with two channels, upsampled to 4x4.
func ExamplePlan_Resize() {
	p, err := resize.Bilinear.Plan(4, 4, 2, 2)
	if err != nil {
		panic(err)
	}
	src := tensor.New(tensor.WithShape(1, 2, 2, 2), tensor.WithBacking([]float32{
		0, 4, // channel 0
		0, 4,
		1, 1, // channel 1: a constant
		1, 1,
	}))
	dst := tensor.New(tensor.WithShape(1, 2, 4, 4), tensor.WithBacking(make([]float32, 32)))
	if err := p.Resize(dst, src); err != nil {
		panic(err)
	}
	d := dst.Float32s()
	fmt.Println("channel 0, row 0:", d[0:4])
	fmt.Println("channel 1, row 0:", d[16:20])
	// Output:
	// channel 0, row 0: [0 1 3 4]
	// channel 1, row 0: [1 1 1 1]
}

// To resizes a tensor into a new one. Area downsampling by an integer
// factor is average pooling.
func ExampleTo() {
	src := tensor.New(tensor.WithShape(1, 1, 2, 4), tensor.WithBacking([]float32{
		1, 3, 10, 20,
		5, 7, 30, 40,
	}))
	dst, err := resize.To(resize.Area, src, 1, 2)
	if err != nil {
		panic(err)
	}
	fmt.Println(dst.Shape(), dst.Float32s())
	// Output:
	// (1, 1, 1, 2) [4 25]
}

// ByName turns a command-line flag into a strategy.
func ExampleByName() {
	var names []string
	for _, s := range resize.Strategies {
		names = append(names, s.String())
	}
	fmt.Println(strings.Join(names, ", "))
	s, err := resize.ByName("lanczos3")
	fmt.Println(s, err)
	_, err = resize.ByName("spline")
	fmt.Println(err != nil)
	// Output:
	// nearest, bilinear, antialias-bilinear, bicubic, lanczos3, area
	// lanczos3 <nil>
	// true
}

// A Kernel of one's own: a box of half-width 1/2, stretched when
// downsampling (PIL's BOX filter).
func ExampleKernel() {
	box := &resize.Kernel{
		Name:      "box",
		Support:   0.5,
		At:        func(t float64) float64 { return 1 },
		Antialias: true,
	}
	src := tensor.New(tensor.WithShape(1, 4), tensor.WithBacking([]float32{2, 4, 6, 8}))
	dst, err := resize.To(box, src, 1, 2)
	if err != nil {
		panic(err)
	}
	fmt.Println(dst.Float32s())
	// Output:
	// [3 7]
}
