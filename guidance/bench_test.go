package guidance

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"
)

// copyModel costs one copy, so the benchmarks measure the guidance's own
// overhead: pooling, the concurrent call and the combination.
type copyModel struct{}

func (copyModel) PredictNoise(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
	copy(dst.Float32s(), x.Float32s())
	return nil
}

var benchShapes = [][]int{{2, 4, 128, 128}, {1, 3, 256, 256}, {1, 4, 16, 64, 64}}

func BenchmarkUpsample(b *testing.B) {
	for _, shape := range benchShapes {
		for _, guided := range []bool{false, true} {
			b.Run(fmt.Sprintf("%v/guided=%v", shape, guided), func(b *testing.B) {
				opts := DefaultUpsampleOptions()
				if !guided {
					opts.Theta = 0
				}
				d, err := Upsample(copyModel{}, testSchedule, opts)
				if err != nil {
					b.Fatal(err)
				}
				x := randTensor(rand.New(rand.NewPCG(1, 1)), shape...)
				dst := tensorOf(shape...)
				ts := []float32{700}
				b.SetBytes(int64(4 * len(x.Float32s())))
				b.ReportAllocs()
				for b.Loop() {
					if err := d.PredictNoise(context.Background(), dst, x, ts); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkCFG(b *testing.B) {
	for _, shape := range benchShapes[:2] {
		b.Run(fmt.Sprint(shape), func(b *testing.B) {
			d := CFG(copyModel{}, copyModel{}, 7.5)
			x := randTensor(rand.New(rand.NewPCG(1, 1)), shape...)
			dst := tensorOf(shape...)
			ts := []float32{700}
			b.SetBytes(int64(4 * len(x.Float32s())))
			b.ReportAllocs()
			for b.Loop() {
				if err := d.PredictNoise(context.Background(), dst, x, ts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// structureShapes are SD 1.5 latents at 1024^2 (batch 2) and a
// Fashion-MNIST evaluation batch at 4x.
var structureShapes = [][]int{{2, 4, 128, 128}, {50, 1, 112, 112}}

// BenchmarkStructureGuidance measures the per-step overhead of Structure
// Guidance: x0^, its low-pass and the output correction.
func BenchmarkStructureGuidance(b *testing.B) {
	for _, shape := range structureShapes {
		b.Run(fmt.Sprint(shape), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 1))
			x, ref := randTensor(r, shape...), randTensor(r, shape...)
			g, err := StructureGuidance(copyModel{}, testSchedule, ref, StructureOptions{From: 999})
			if err != nil {
				b.Fatal(err)
			}
			dst, ts := tensorOf(shape...), []float32{500}
			b.SetBytes(int64(4 * len(x.Float32s())))
			for b.Loop() {
				if err := g.PredictNoise(context.Background(), dst, x, ts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
