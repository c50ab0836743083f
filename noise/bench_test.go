package noise

import (
	"testing"

	"gorgonia.org/tensor"
)

// BenchmarkNormal reports ns per value (ns/op divided by the length) for
// each source, on an SD-1.5 latent at 512x512 (4x64x64) and on a request
// short enough for torch's scalar path.
func BenchmarkNormal(b *testing.B) {
	for _, s := range sources {
		for _, n := range []int{8, 4 * 64 * 64} {
			b.Run(s.name+"/n="+itoa(n), func(b *testing.B) {
				src := s.new(1)
				v := make([]float32, n)
				b.SetBytes(int64(4 * n))
				for b.Loop() {
					src.Normal(v)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/value")
			})
		}
	}
}

func BenchmarkFillTensor(b *testing.B) {
	x := tensor.New(tensor.WithShape(1, 4, 64, 64), tensor.Of(tensor.Float32))
	src := NewTorchCPU(1)
	for b.Loop() {
		if err := FillTensor(src, x); err != nil {
			b.Fatal(err)
		}
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var buf [20]byte
	i := len(buf)
	for ; n > 0; n /= 10 {
		i--
		buf[i] = byte('0' + n%10)
	}
	return string(buf[i:])
}
