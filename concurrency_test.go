package ugo_test

import (
	"context"
	"testing"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
)

type filler struct{ fills bool }

func (f *filler) PredictNoise(context.Context, *tensor.Dense, *tensor.Dense, []float32) error {
	return nil
}

func (f *filler) FillsCPU() bool { return f.fills }

func TestFillsCPU(t *testing.T) {
	var typedNil *filler
	for _, c := range []struct {
		name string
		d    ugo.Denoiser
		want bool
	}{
		{"nil", nil, false},
		{"typed nil", typedNil, false},
		{"says nothing", ugo.DenoiserFunc(func(context.Context, *tensor.Dense, *tensor.Dense, []float32) error { return nil }), false},
		{"fills", &filler{true}, true},
		{"does not fill", &filler{false}, false},
	} {
		if got := ugo.FillsCPU(c.d); got != c.want {
			t.Errorf("%s: FillsCPU = %v, want %v", c.name, got, c.want)
		}
	}
}
