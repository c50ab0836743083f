package upscale

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

var benchShapes = [][]int{
	{2, 4, 128, 128},  // SD 1.5 latents at 1024^2, batch 2
	{50, 1, 112, 112}, // a Fashion-MNIST eval batch at 4x
}

// BenchmarkMixFrequencies measures Latent Frequency Mixing, done once per
// refinement.
func BenchmarkMixFrequencies(b *testing.B) {
	for _, shape := range benchShapes {
		b.Run(fmt.Sprint(shape), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 1))
			low, high := randTensor(r, shape...), randTensor(r, shape...)
			b.SetBytes(int64(4 * len(low.Float32s())))
			for b.Loop() {
				if _, err := MixFrequencies(low, high, DefaultCutoff); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
