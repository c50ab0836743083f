package resample

import (
	"math/rand/v2"
	"testing"
)

// upsampleCases are the shapes that Upsample Guidance pools and repeats
// when it samples the Fashion-MNIST demo model (trained at 28x28) at 2x and
// 4x, one image and a batch of 16, and 4x on an SD latent: the factor-4
// kernels are not covered by benchCases.
var upsampleCases = []struct {
	shape, factors []int
}{
	{[]int{1, 1, 56, 56}, []int{2, 2}},
	{[]int{1, 1, 112, 112}, []int{4, 4}},
	{[]int{16, 1, 56, 56}, []int{2, 2}},
	{[]int{16, 1, 112, 112}, []int{4, 4}},
	{[]int{1, 4, 256, 256}, []int{4, 4}},
}

// reportGBps adds a GB/s metric: bytes read plus bytes written per op.
func reportGBps(b *testing.B, bytes int) {
	b.ReportMetric(float64(bytes)*float64(b.N)/float64(b.Elapsed().Nanoseconds()), "GB/s")
}

// BenchmarkUpsampleKernels runs the three kernels of one guided prediction
// (Pool of x_t, Pool of the prediction, AddRepeated of the correction) on the
// upsampleCases, reporting GB/s.
func BenchmarkUpsampleKernels(b *testing.B) {
	for _, bc := range upsampleCases {
		p, err := NewPooling(bc.shape, bc.factors)
		if err != nil {
			b.Fatal(err)
		}
		hi := randSlice(rand.New(rand.NewPCG(1, 1)), p.HighLen())
		lo := randSlice(rand.New(rand.NewPCG(2, 2)), p.LowLen())
		name := benchName(bc.shape, bc.factors)
		b.Run("Pool/"+name, func(b *testing.B) {
			dst := make([]float32, p.LowLen())
			for b.Loop() {
				p.Pool(dst, hi, 0.5)
			}
			reportGBps(b, 4*(p.HighLen()+p.LowLen()))
		})
		b.Run("Repeat/"+name, func(b *testing.B) {
			dst := make([]float32, p.HighLen())
			for b.Loop() {
				p.Repeat(dst, lo)
			}
			reportGBps(b, 4*(p.HighLen()+p.LowLen()))
		})
		b.Run("AddRepeated/"+name, func(b *testing.B) {
			dst := make([]float32, p.HighLen())
			for b.Loop() {
				p.AddRepeated(dst, lo, 0.5)
			}
			reportGBps(b, 4*(2*p.HighLen()+p.LowLen()))
		})
	}
}
