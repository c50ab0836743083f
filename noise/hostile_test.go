package noise

import (
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

// TestHostileTensors: FillTensor and NewTensor refuse what they cannot fill
// in torch's order, with readable errors.
func TestHostileTensors(t *testing.T) {
	transposed := tensor.New(tensor.WithShape(2, 3), tensor.WithBacking(make([]float32, 6)))
	if err := transposed.T(); err != nil {
		t.Fatal(err)
	}
	colMajor := tensor.New(tensor.WithShape(2, 3), tensor.WithBacking(make([]float32, 6)), tensor.AsFortran(nil))
	big := tensor.New(tensor.WithShape(4, 4), tensor.WithBacking(make([]float32, 16)))
	view, err := big.Slice(nil, tensor.S(0, 2))
	if err != nil {
		t.Fatal(err)
	}
	var nilPCG *PCG
	var nilTorch *TorchCPU
	tried := 0
	for name, x := range map[string]*tensor.Dense{
		"nil": nil, "zero": {}, "transposed": transposed, "column-major": colMajor, "view": view.(*tensor.Dense),
		"float64": tensor.New(tensor.WithShape(2), tensor.Of(tensor.Float64)), "scalar": tensor.New(tensor.FromScalar(float32(1))),
	} {
		tried++
		err := FillTensor(NewPCG(1), x)
		if err == nil || strings.Contains(err.Error(), "%!") {
			t.Errorf("FillTensor(%s): %v", name, err)
		}
	}
	for name, src := range map[string]Source{"nil": nil, "nil *PCG": nilPCG, "nil *TorchCPU": nilTorch} {
		tried += 2
		if err := FillTensor(src, tensor.New(tensor.WithShape(2), tensor.Of(tensor.Float32))); err == nil {
			t.Errorf("FillTensor with %s accepted", name)
		}
		if _, err := NewTensor(src, 2); err == nil {
			t.Errorf("NewTensor with %s accepted", name)
		}
	}
	for _, shape := range [][]int{{}, {0}, {-1}, {2, -3}, {1 << 40, 1 << 40}, {1 << 31, 1 << 31, 4}} {
		tried++
		if _, err := NewTensor(NewPCG(1), shape...); err == nil {
			t.Errorf("NewTensor(%v) accepted", shape)
		}
	}
	t.Logf("%d hostile inputs", tried)
}
