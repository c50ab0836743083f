package graphmodel_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ugo-diffusion/ugo/graphmodel/convnet"
)

// BenchmarkPredictNoise measures one call of convnet.DefaultConfig's
// network (61k parameters) through a Model whose graph is already
// compiled, at the shapes a 14x14 model sees when sampled natively, at 2x,
// and in batches.
func BenchmarkPredictNoise(b *testing.B) {
	net, err := convnet.New(convnet.DefaultConfig(), 1)
	if err != nil {
		b.Fatal(err)
	}
	for _, shape := range [][]int{{1, 1, 14, 14}, {1, 1, 28, 28}, {16, 1, 14, 14}} {
		b.Run(fmt.Sprintf("%dx%dx%dx%d", shape[0], shape[1], shape[2], shape[3]), func(b *testing.B) {
			model, err := net.Denoiser()
			if err != nil {
				b.Fatal(err)
			}
			x, dst := randomDense(1, shape...), dense(shape...)
			ts := []float32{500}
			ctx := context.Background()
			if err := model.PredictNoise(ctx, dst, x, ts); err != nil { // compile
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := model.PredictNoise(ctx, dst, x, ts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCompile measures building and compiling the graph of one shape
// (the cost of the first call at a new shape).
func BenchmarkCompile(b *testing.B) {
	net, err := convnet.New(convnet.DefaultConfig(), 1)
	if err != nil {
		b.Fatal(err)
	}
	x, dst := randomDense(1, 1, 1, 14, 14), dense(1, 1, 14, 14)
	b.ReportAllocs()
	for b.Loop() {
		model, err := net.Denoiser()
		if err != nil {
			b.Fatal(err)
		}
		if err := model.PredictNoise(context.Background(), dst, x, []float32{500}); err != nil {
			b.Fatal(err)
		}
	}
}
