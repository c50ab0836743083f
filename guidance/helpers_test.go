package guidance

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/schedule"
)

var testSchedule = schedule.Linear(1000, 0.0001, 0.02)

func tensorOf(shape ...int) *tensor.Dense { return newTensor(shape) }

func randTensor(r *rand.Rand, shape ...int) *tensor.Dense {
	x := newTensor(shape)
	for i, d := 0, x.Float32s(); i < len(d); i++ {
		d[i] = float32(r.NormFloat64())
	}
	return x
}

// pointwise is a deterministic, nonlinear, allocation-free model whose output
// depends on x, t, the batch element and the channel: a stand-in for a
// network that is not resolution-consistent.
type pointwise struct{ a, b float32 }

func (m pointwise) PredictNoise(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	shape := x.Shape()
	per := len(x.Float32s()) / shape[0]
	xs, ds := x.Float32s(), dst.Float32s()
	for b := range shape[0] {
		tb := ugo.TimestepAt(t, b) / 1000
		for i := b * per; i < (b+1)*per; i++ {
			v := xs[i]
			ds[i] = m.a*v + m.b*float32(math.Sin(float64(v+tb))) + 0.1*tb
		}
	}
	return nil
}

// spy wraps a model and records, per input shape, the number of calls and
// the last input and timesteps.
type spy struct {
	model ugo.Denoiser
	high  []int // shape counted as a high-resolution call

	highCalls, lowCalls atomic.Int64

	mu      sync.Mutex
	lastLow []float32
	lastTau []float32
}

func (s *spy) PredictNoise(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
	if slices.Equal([]int(x.Shape()), []int(s.high)) {
		s.highCalls.Add(1)
	} else {
		s.lowCalls.Add(1)
		s.mu.Lock()
		s.lastLow = append(s.lastLow[:0], x.Float32s()...)
		s.lastTau = append(s.lastTau[:0], t...)
		s.mu.Unlock()
	}
	return s.model.PredictNoise(ctx, dst, x, t)
}

func predict(d ugo.Denoiser, x *tensor.Dense, t ...float32) ([]float32, error) {
	dst := newTensor(x.Shape())
	err := d.PredictNoise(context.Background(), dst, x, t)
	return dst.Float32s(), err
}

func maxAbsDiff(a, b []float32) float64 {
	var m float64
	for i := range a {
		m = max(m, math.Abs(float64(a[i]-b[i])))
	}
	return m
}
