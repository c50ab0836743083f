package tiling_test

import (
	"context"
	"fmt"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/schedule"
	"github.com/ugo-diffusion/ugo/tiling"
)

// A model trained at 16x16 samples a 64x64 canvas: Upsample Guidance's
// high-resolution call runs on 16x16 tiles, its low-resolution call on the
// whole sample pooled to 16x16. Every model call here is 16x16.
func Example() {
	calls := map[string]int{}
	model := ugo.DenoiserFunc(func(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
		kind := "low-resolution"
		if r, ok := ugo.RegionFrom(ctx); ok && r.Scale == [2]int{1, 1} {
			kind = "tile"
		}
		calls[fmt.Sprintf("%s %v", kind, x.Shape())]++
		copy(dst.Float32s(), x.Float32s()) // a stand-in for a network
		return nil
	})
	tiles, err := tiling.Tiled(model, tiling.Options{Size: [2]int{16, 16}})
	if err != nil {
		panic(err)
	}
	opts := guidance.DefaultUpsampleOptions()
	opts.Factors, opts.Sequential = []int{4, 4}, true
	guided, err := guidance.UpsampleHighLow(tiles, model, schedule.Linear(1000, 1e-4, 0.02), opts)
	if err != nil {
		panic(err)
	}
	x := tensor.New(tensor.WithShape(1, 1, 64, 64), tensor.Of(tensor.Float32))
	dst := tensor.New(tensor.WithShape(1, 1, 64, 64), tensor.Of(tensor.Float32))
	if err := guided.PredictNoise(context.Background(), dst, x, []float32{999}); err != nil {
		panic(err)
	}
	fmt.Println(calls)
	// Output:
	// map[low-resolution (1, 1, 16, 16):1 tile (1, 1, 16, 16):25]
}
