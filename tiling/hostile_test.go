package tiling

import (
	"context"
	"errors"
	"math"
	"testing"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
)

func TestOptionsErrors(t *testing.T) {
	cases := []Options{
		{},
		{Size: [2]int{0, 8}},
		{Size: [2]int{8, -1}},
		{Size: [2]int{8, 8}, Overlap: [2]int{8, 0}},
		{Size: [2]int{8, 8}, Overlap: [2]int{-1, 0}},
		{Size: [2]int{8, 8}, Batch: -1},
		{Size: [2]int{8, 8}, Blend: 7},
	}
	for _, o := range cases {
		if _, err := Tiled(pointwise, o); err == nil {
			t.Errorf("Tiled with %+v: no error", o)
		}
	}
	if _, err := Tiled(nil, Options{Size: [2]int{8, 8}}); !errors.Is(err, ugo.ErrNilDenoiser) {
		t.Errorf("nil model: got %v, want ugo.ErrNilDenoiser", err)
	}
	var nilFunc ugo.DenoiserFunc
	if _, err := Tiled(nilFunc, Options{Size: [2]int{8, 8}}); !errors.Is(err, ugo.ErrNilDenoiser) {
		t.Errorf("typed nil model: got %v, want ugo.ErrNilDenoiser", err)
	}
	t.Logf("%d option sets and 2 nil models", len(cases))
}

func TestHostileCalls(t *testing.T) {
	m, _ := Tiled(pointwise, Options{Size: [2]int{8, 8}})
	x := newTensor([]int{1, 1, 16, 16})
	cases := []struct {
		name   string
		dst, x *tensor.Dense
		t      []float32
	}{
		{"nil x", newTensor([]int{1, 1, 16, 16}), nil, []float32{1}},
		{"nil dst", nil, x, []float32{1}},
		{"rank 3", newTensor([]int{1, 16, 16}), newTensor([]int{1, 16, 16}), []float32{1}},
		{"shape mismatch", newTensor([]int{1, 1, 16, 8}), x, []float32{1}},
		{"alias", x, x, []float32{1}},
		{"no t", newTensor([]int{1, 1, 16, 16}), x, nil},
		{"NaN t", newTensor([]int{1, 1, 16, 16}), x, []float32{float32(math.NaN())}},
		{"float64", tensor.New(tensor.WithShape(1, 1, 16, 16), tensor.Of(tensor.Float64)), x, []float32{1}},
		{"zero dense", &tensor.Dense{}, x, []float32{1}},
	}
	for _, c := range cases {
		err := m.PredictNoise(context.Background(), c.dst, c.x, c.t)
		if err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
	t.Logf("%d hostile calls", len(cases))
}
