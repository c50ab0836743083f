package resize

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchSizes are the resizes of the upscaling pipelines: SD latents 2x (64
// -> 128), an RGB image 2x (512 -> 1024), the low-pass of Structure
// Guidance (antialiased 128 -> 16 and back), and the Fashion-MNIST 4x.
var benchSizes = []struct {
	planes, sh, sw, dh, dw int
}{
	{4, 64, 64, 128, 128},
	{3, 512, 512, 1024, 1024},
	{4, 128, 128, 16, 16},
	{4, 16, 16, 128, 128},
	{50, 28, 28, 112, 112},
}

// Bytes per op are those read plus those written.
func BenchmarkScale(b *testing.B) {
	for _, bs := range benchSizes {
		for _, s := range Strategies {
			b.Run(fmt.Sprintf("%s/%dx%dx%d->%dx%d", s, bs.planes, bs.sh, bs.sw, bs.dh, bs.dw), func(b *testing.B) {
				p, err := s.Plan(bs.dh, bs.dw, bs.sh, bs.sw)
				if err != nil {
					b.Fatal(err)
				}
				src := randPlanes(rand.New(rand.NewPCG(1, 1)), bs.planes*bs.sh*bs.sw)
				dst := make([]float32, bs.planes*bs.dh*bs.dw)
				b.SetBytes(int64(4 * (len(src) + len(dst))))
				for b.Loop() {
					p.Scale(dst, src)
				}
			})
		}
	}
}

// BenchmarkPlan measures computing the weights, which a Plan does once.
func BenchmarkPlan(b *testing.B) {
	for _, s := range Strategies {
		b.Run(s.String()+"/512->1024", func(b *testing.B) {
			for b.Loop() {
				if _, err := s.Plan(1024, 1024, 512, 512); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
