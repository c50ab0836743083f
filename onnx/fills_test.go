package onnx

import (
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/ugo-diffusion/ugo"
)

func TestFillsCPU(t *testing.T) {
	requireRuntime(t)
	cpus := runtime.NumCPU()
	cases := []struct {
		name string
		opts []Option
		want bool
	}{
		{"runtime default", nil, true},
		{"intra 0", []Option{WithThreads(0, 0)}, true},
		{"a thread per CPU", []Option{WithThreads(cpus, 1)}, true},
		{"more threads than CPUs", []Option{WithThreads(cpus+1, 1)}, true},
	}
	if cpus > 1 {
		cases = append(cases, struct {
			name string
			opts []Option
			want bool
		}{"fewer threads than CPUs", []Option{WithThreads(cpus-1, 1)}, false})
	}
	for _, c := range cases {
		m := open(t, "extra.onnx", c.opts...)
		if got := m.FillsCPU(); got != c.want {
			t.Errorf("%s: Model.FillsCPU = %v, want %v", c.name, got, c.want)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		cond, err := m.With("encoder_hidden_states", randDense(rng, 1, 3, refD))
		if err != nil {
			t.Fatal(err)
		}
		uncond, err := m.With("encoder_hidden_states", randDense(rng, 1, 3, refD))
		if err != nil {
			t.Fatal(err)
		}
		g, err := BatchedCFG(cond, uncond, 2)
		if err != nil {
			t.Fatal(err)
		}
		if ugo.FillsCPU(cond) != c.want || ugo.FillsCPU(g) != c.want {
			t.Errorf("%s: Bound %v, CFG %v, want the model's %v", c.name, ugo.FillsCPU(cond), ugo.FillsCPU(g), c.want)
		}
	}
	var nilModel *Model
	if nilModel.FillsCPU() || ugo.FillsCPU(nilModel) {
		t.Error("a nil Model fills the CPU")
	}
	if fillsCPU(&config{}, []string{"CUDAExecutionProvider", "CPUExecutionProvider"}) {
		t.Error("a GPU session fills the CPU")
	}
}
