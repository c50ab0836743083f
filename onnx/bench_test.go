package onnx

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkPredictNoise measures one steady-state call of the dynamic test
// model (one 3x3 conv, 2 channels) at several sizes: at small sizes it is
// the fixed cost of a call through the binding and ONNX Runtime.
func BenchmarkPredictNoise(b *testing.B) {
	m := open(b, "dynamic.onnx", WithThreads(1, 1))
	for _, s := range [][]int{{1, 2, 8, 8}, {1, 2, 64, 64}, {4, 2, 64, 64}, {1, 2, 256, 256}} {
		b.Run(fmt.Sprint(s), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 1))
			x := randDense(rng, s...)
			dst := zerosLike(x)
			ts := []float32{500}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := m.PredictNoise(ctx, dst, x, ts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPredictNoiseFloat16 adds the float16 conversions at the boundary.
func BenchmarkPredictNoiseFloat16(b *testing.B) {
	m := open(b, "fp16.onnx", WithThreads(1, 1))
	rng := rand.New(rand.NewPCG(1, 1))
	x := randDense(rng, 1, 2, 64, 64)
	dst := zerosLike(x)
	b.ReportAllocs()
	for b.Loop() {
		if err := m.PredictNoise(context.Background(), dst, x, []float32{500}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPredictNoiseParallel calls one model from GOMAXPROCS goroutines.
func BenchmarkPredictNoiseParallel(b *testing.B) {
	m := open(b, "dynamic.onnx", WithThreads(1, 1))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(2, 2))
		x := randDense(rng, 1, 2, 64, 64)
		dst := zerosLike(x)
		for pb.Next() {
			if err := m.PredictNoise(context.Background(), dst, x, []float32{500}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCFG compares classifier-free guidance as one session call on a
// doubled batch with two calls one after the other.
func BenchmarkCFG(b *testing.B) {
	m := open(b, "extra.onnx", WithThreads(1, 1))
	rng := rand.New(rand.NewPCG(3, 3))
	cond, err := m.With("encoder_hidden_states", randDense(rng, 1, 8, refD))
	if err != nil {
		b.Fatal(err)
	}
	uncond, err := m.With("encoder_hidden_states", randDense(rng, 1, 8, refD))
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{8, 64} {
		for _, batched := range []bool{true, false} {
			name := fmt.Sprintf("%dx%d/sequential", size, size)
			if batched {
				name = fmt.Sprintf("%dx%d/batched", size, size)
			}
			b.Run(name, func(b *testing.B) {
				g, err := BatchedCFG(cond, uncond, 7.5)
				if err != nil {
					b.Fatal(err)
				}
				g.batched = batched
				x := randDense(rng, 1, 2, size, size)
				dst := zerosLike(x)
				b.ReportAllocs()
				for b.Loop() {
					if err := g.PredictNoise(context.Background(), dst, x, []float32{500}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
