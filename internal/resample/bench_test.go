package resample

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

var benchCases = []struct {
	shape, factors []int
}{
	{[]int{2, 4, 128, 128}, []int{2, 2}},      // SD 1.5 latents at 1024^2, CFG batch
	{[]int{1, 3, 512, 512}, []int{2, 2}},      // pixel-space image
	{[]int{1, 4, 64, 256}, []int{1, 2}},       // panorama
	{[]int{1, 4, 96, 96}, []int{3, 3}},        // 3x
	{[]int{1, 4, 16, 64, 64}, []int{2, 2, 2}}, // video, spatio-temporal
	{[]int{1, 4, 16, 64, 64}, []int{2, 1, 1}}, // video, temporal only
}

func benchName(shape, factors []int) string { return fmt.Sprintf("%v_by_%v", shape, factors) }

// Bytes reported per op are those read plus those written.
func BenchmarkPool(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(benchName(bc.shape, bc.factors), func(b *testing.B) {
			p, _ := NewPooling(bc.shape, bc.factors)
			src := randSlice(rand.New(rand.NewPCG(1, 1)), p.HighLen())
			dst := make([]float32, p.LowLen())
			b.SetBytes(int64(4 * (p.HighLen() + p.LowLen())))
			for b.Loop() {
				p.Pool(dst, src, 1)
			}
		})
	}
}

func BenchmarkRepeat(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(benchName(bc.shape, bc.factors), func(b *testing.B) {
			p, _ := NewPooling(bc.shape, bc.factors)
			src := randSlice(rand.New(rand.NewPCG(1, 1)), p.LowLen())
			dst := make([]float32, p.HighLen())
			b.SetBytes(int64(4 * (p.HighLen() + p.LowLen())))
			for b.Loop() {
				p.Repeat(dst, src)
			}
		})
	}
}

func BenchmarkAddRepeated(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(benchName(bc.shape, bc.factors), func(b *testing.B) {
			p, _ := NewPooling(bc.shape, bc.factors)
			src := randSlice(rand.New(rand.NewPCG(1, 1)), p.LowLen())
			dst := make([]float32, p.HighLen())
			b.SetBytes(int64(4 * (2*p.HighLen() + p.LowLen())))
			for b.Loop() {
				p.AddRepeated(dst, src, 0.5)
			}
		})
	}
}

// BenchmarkCopy is the memory-bandwidth reference: a plain copy of the
// high-resolution tensor.
func BenchmarkCopy(b *testing.B) {
	for _, bc := range benchCases[:2] {
		b.Run(benchName(bc.shape, bc.factors), func(b *testing.B) {
			n := 1
			for _, d := range bc.shape {
				n *= d
			}
			src := make([]float32, n)
			dst := make([]float32, n)
			b.SetBytes(int64(8 * n))
			for b.Loop() {
				copy(dst, src)
			}
		})
	}
}
