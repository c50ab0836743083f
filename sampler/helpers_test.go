package sampler

import (
	"context"
	"math"
	"testing"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/schedule"
)

// The deterministic inputs of diffusers' scheduler tests
// (tests/schedulers/test_schedulers.py): dummy_sample_deter is
// arange(768).reshape(3, 8, 8, 4) / 768 permuted to (4, 3, 8, 8), and
// dummy_noise_deter the same over the reversed range.
const (
	dB, dC, dH, dW = 4, 3, 8, 8
	dN             = dB * dC * dH * dW
)

func dummyDeter(reversed bool) *tensor.Dense {
	data := make([]float32, dN)
	for b := range dB {
		for c := range dC {
			for h := range dH {
				for w := range dW {
					k := c*dH*dW*dB + h*dW*dB + w*dB + b
					if reversed {
						k = dN - 1 - k
					}
					data[((b*dC+c)*dH+h)*dW+w] = float32(k) / float32(dN)
				}
			}
		}
	}
	return tensor.New(tensor.WithShape(dB, dC, dH, dW), tensor.WithBacking(data))
}

// dummyModel is diffusers' dummy_model, sample * t / (t + 1), in float32.
var dummyModel = ugo.DenoiserFunc(func(_ context.Context, dst, x *tensor.Dense, t []float32) error {
	if err := ugo.CheckPrediction(dst, x, t); err != nil {
		return err
	}
	d, xs := dst.Float32s(), x.Float32s()
	tt := t[0]
	for i, v := range xs {
		d[i] = (v * tt) / (tt + 1)
	}
	return nil
})

// absSumMean returns torch.sum(torch.abs(x)) and torch.mean(torch.abs(x)).
func absSumMean(x []float32) (sum, mean float64) {
	for _, v := range x {
		sum += math.Abs(float64(v))
	}
	return sum, sum / float64(len(x))
}

// fixedThen is a noise.Source whose first Normal call copies first and
// whose later calls go to rest: diffusers' tests add dummy_noise_deter and
// then draw the step noise from torch.manual_seed(0).
type fixedThen struct {
	first []float32
	used  bool
	rest  noise.Source
}

func (f *fixedThen) Normal(dst []float32) {
	if !f.used {
		f.used = true
		copy(dst, f.first)
		return
	}
	f.rest.Normal(dst)
}

func linearSchedule(t testing.TB, betaStart float32) *schedule.Schedule {
	t.Helper()
	return schedule.Linear(1000, betaStart, 0.02)
}

func clone(x *tensor.Dense) *tensor.Dense {
	return tensor.New(tensor.WithShape(x.Shape().Clone()...), tensor.WithBacking(append([]float32(nil), x.Float32s()...)))
}

// analyticModel is the exact eps-predictor for data concentrated at the
// constant c: eps = (x - sqrt(abar_t) c) / sqrt(1 - abar_t).
func analyticModel(s *schedule.Schedule, c float64) ugo.Denoiser {
	return ugo.DenoiserFunc(func(_ context.Context, dst, x *tensor.Dense, t []float32) error {
		if err := ugo.CheckPrediction(dst, x, t); err != nil {
			return err
		}
		a := s.AlphaBar(float64(t[0]))
		sa, sb := math.Sqrt(a), math.Sqrt(1-a)
		d := dst.Float32s()
		for i, v := range x.Float32s() {
			d[i] = float32((float64(v) - sa*c) / sb)
		}
		return nil
	})
}
