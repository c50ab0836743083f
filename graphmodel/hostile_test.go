package graphmodel_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/graphmodel"
)

// TestHostileGraphModel: nil and zero models, hostile tensors and
// non-finite outputs are errors.
func TestHostileGraphModel(t *testing.T) {
	ctx := context.Background()
	var nilModel *graphmodel.Model
	if err := nilModel.PredictNoise(ctx, dense(1, 1, 2, 2), dense(1, 1, 2, 2), []float32{1}); !errors.Is(err, ugo.ErrNilDenoiser) {
		t.Fatalf("nil Model: %v", err)
	}
	_ = nilModel.Stats()
	if err := (&graphmodel.Model{}).PredictNoise(ctx, dense(1, 1, 2, 2), dense(1, 1, 2, 2), []float32{1}); !errors.Is(err, ugo.ErrNilDenoiser) {
		t.Fatalf("zero Model: %v", err)
	}
	if err := ugo.CheckDenoiser("m", nilModel); !errors.Is(err, ugo.ErrNilDenoiser) {
		t.Fatal(err)
	}
	w := tensor.New(tensor.WithShape(1), tensor.WithBacking([]float32{2}))
	m, err := graphmodel.New(scaleBuild(w))
	if err != nil {
		t.Fatal(err)
	}
	transposed := dense(1, 1, 2, 3)
	if err := transposed.T(0, 1, 3, 2); err != nil {
		t.Fatal(err)
	}
	same := dense(1, 1, 2, 2)
	for name, c := range map[string][2]*tensor.Dense{
		"zero x": {dense(1, 1, 2, 2), {}}, "zero dst": {{}, dense(1, 1, 2, 2)}, "transposed": {dense(1, 1, 3, 2), transposed},
		"alias": {same, same}, "nil x": {dense(1, 1, 2, 2), nil}, "rank 3": {dense(1, 2, 2), dense(1, 2, 2)},
	} {
		err := m.PredictNoise(ctx, c[0], c[1], []float32{1})
		if err == nil || strings.Contains(err.Error(), "%!") {
			t.Errorf("%s: %v", name, err)
		}
	}
	x := dense(1, 1, 2, 2)
	x.Float32s()[1] = float32(math.Inf(1))
	if err := m.PredictNoise(ctx, dense(1, 1, 2, 2), x, []float32{1}); !errors.Is(err, ugo.ErrNonFinite) {
		t.Fatalf("Inf input: %v, want ugo.ErrNonFinite", err)
	}
	big := tensor.New(tensor.WithShape(1), tensor.WithBacking([]float32{3e38}))
	m2, err := graphmodel.New(scaleBuild(big))
	if err != nil {
		t.Fatal(err)
	}
	x2 := dense(1, 1, 2, 2)
	x2.Float32s()[0] = 10
	if err := m2.PredictNoise(ctx, dense(1, 1, 2, 2), x2, []float32{1}); !errors.Is(err, ugo.ErrNonFinite) {
		t.Fatalf("overflowing weights: %v, want ugo.ErrNonFinite", err)
	}
}
