package resize

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
)

func hostileDense(shape ...int) *tensor.Dense {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(make([]float32, n)))
}

// TestHostileResize: every strategy refuses the tensors and sizes a
// careless or hostile caller can pass, with an error and no panic.
func TestHostileResize(t *testing.T) {
	transposed := hostileDense(1, 1, 2, 3)
	if err := transposed.T(0, 1, 3, 2); err != nil {
		t.Fatal(err)
	}
	colMajor := tensor.New(tensor.WithShape(1, 1, 2, 3), tensor.WithBacking(make([]float32, 6)), tensor.AsFortran(nil))
	srcs := map[string]*tensor.Dense{
		"nil": nil, "zero": {}, "transposed": transposed, "column-major": colMajor, "rank 1": hostileDense(4),
		"float64": tensor.New(tensor.WithShape(1, 1, 2, 2), tensor.Of(tensor.Float64)),
	}
	sizes := [][2]int{{0, 4}, {4, 0}, {-1, 4}, {1 << 40, 1}, {1 << 20, 1 << 20}}
	tried := 0
	for _, s := range Strategies {
		for name, src := range srcs {
			tried++
			if _, err := To(s, src, 4, 4); err == nil || strings.Contains(err.Error(), "%!") {
				t.Errorf("%v, %s: %v", s, name, err)
			}
		}
		for _, hw := range sizes {
			tried++
			if _, err := To(s, hostileDense(2, 3, 4, 4), hw[0], hw[1]); err == nil {
				t.Errorf("%v to %v accepted", s, hw)
			}
		}
		tried++
		p, err := s.Plan(8, 8, 4, 4)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]float32, 64+16)
		src := tensor.New(tensor.WithShape(1, 1, 4, 4), tensor.WithBacking(buf[:16]))
		dst := tensor.New(tensor.WithShape(1, 1, 8, 8), tensor.WithBacking(buf[8:72]))
		if err := p.Resize(dst, src); !errors.Is(err, ugo.ErrAlias) {
			t.Errorf("%v: overlapping dst and src: %v, want ugo.ErrAlias", s, err)
		}
	}
	for _, k := range []*Kernel{nil, {}, {Name: "k", Support: math.NaN(), At: func(float64) float64 { return 1 }},
		{Name: "k", Support: math.Inf(1), At: func(float64) float64 { return 1 }}, {Name: "k", Support: -1, At: func(float64) float64 { return 1 }}} {
		tried++
		if _, err := k.Plan(4, 4, 2, 2); err == nil {
			t.Errorf("kernel %+v accepted", k)
		}
	}
	if _, err := To(nil, hostileDense(1, 1, 2, 2), 4, 4); err == nil {
		t.Error("nil strategy accepted")
	}
	for _, name := range []string{"", "\x00", strings.Repeat("x", 1<<16), "bicubic "} {
		tried++
		if _, err := ByName(name); err == nil {
			t.Errorf("ByName(%q) accepted", name)
		}
	}
	prev := ugo.SetMemoryLimit(1 << 20)
	defer ugo.SetMemoryLimit(prev)
	var me *ugo.MemoryError
	if _, err := To(Bilinear, hostileDense(64, 4, 8, 8), 256, 256); !errors.As(err, &me) || !strings.Contains(err.Error(), fmt.Sprint([]int{64, 4, 256, 256})) {
		t.Errorf("a 64 MiB result under a 1 MiB limit: %v", err)
	}
	t.Logf("%d hostile inputs", tried+1)
}
