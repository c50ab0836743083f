package convnet

import (
	"fmt"
	"testing"

	"github.com/ugo-diffusion/ugo/noise"
)

// BenchmarkTrainStep measures one Trainer step (forward, backward, Adam)
// of DefaultConfig's network on 14x14 images.
func BenchmarkTrainStep(b *testing.B) {
	for _, batch := range []int{16, 32} {
		b.Run(fmt.Sprintf("batch%d", batch), func(b *testing.B) {
			net, err := New(DefaultConfig(), 1)
			if err != nil {
				b.Fatal(err)
			}
			tr, err := NewTrainer(net, TrainConfig{Batch: batch, Height: 14, Width: 14, EMADecay: 0.995})
			if err != nil {
				b.Fatal(err)
			}
			x0 := make([]float32, batch*14*14)
			noise.NewPCG(1).Normal(x0)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tr.Step(x0); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "steps/s")
		})
	}
}
