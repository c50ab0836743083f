package graphmodel_test

import (
	"context"
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo/graphmodel"
)

// A denoiser defined as a gorgonia graph: eps = w*x + t/1000, with w a
// parameter shared by the graphs of every input shape. The first call at a
// shape compiles a graph; later calls at that shape reuse it.
func Example() {
	w := tensor.New(tensor.WithShape(1), tensor.WithBacking([]float32{0.5}))
	build := func(g *gorgonia.ExprGraph, x, t *gorgonia.Node) (*gorgonia.Node, error) {
		n := x.Shape()[0]
		wn, err := graphmodel.Weight(g, "w", w)
		if err != nil {
			return nil, err
		}
		w4, err := gorgonia.Reshape(wn, tensor.Shape{1, 1, 1, 1})
		if err != nil {
			return nil, err
		}
		wx, err := gorgonia.BroadcastHadamardProd(x, w4, nil, []byte{0, 1, 2, 3})
		if err != nil {
			return nil, err
		}
		t4, err := gorgonia.Reshape(t, tensor.Shape{n, 1, 1, 1})
		if err != nil {
			return nil, err
		}
		ts, err := gorgonia.Mul(t4, gorgonia.NewConstant(float32(0.001)))
		if err != nil {
			return nil, err
		}
		return gorgonia.BroadcastAdd(wx, ts, nil, []byte{1, 2, 3})
	}
	model, err := graphmodel.New(build)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	for _, size := range []int{2, 4, 2} {
		x := tensor.New(tensor.WithShape(1, 1, size, size), tensor.WithBacking(make([]float32, size*size)))
		for i := range x.Float32s() {
			x.Float32s()[i] = float32(i + 1)
		}
		eps := tensor.New(tensor.WithShape(1, 1, size, size), tensor.WithBacking(make([]float32, size*size)))
		if err := model.PredictNoise(ctx, eps, x, []float32{500}); err != nil {
			panic(err)
		}
		fmt.Println(size, eps.Float32s()[:4])
	}
	fmt.Printf("%+v\n", model.Stats())
	// Output:
	// 2 [1 1.5 2 2.5]
	// 4 [1 1.5 2 2.5]
	// 2 [1 1.5 2 2.5]
	// {Compiles:2 Hits:1 Shapes:2}
}
