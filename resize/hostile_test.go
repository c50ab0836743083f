package resize

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	require.NoError(t, transposed.T(0, 1, 3, 2))
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
			_, err := To(s, src, 4, 4)
			if assert.Error(t, err, "%v, %s", s, name) {
				assert.NotContains(t, err.Error(), "%!", "%v, %s", s, name)
			}
		}
		for _, hw := range sizes {
			tried++
			_, err := To(s, hostileDense(2, 3, 4, 4), hw[0], hw[1])
			assert.Error(t, err, "%v to %v", s, hw)
		}
		tried++
		p, err := s.Plan(8, 8, 4, 4)
		require.NoError(t, err)
		buf := make([]float32, 64+16)
		src := tensor.New(tensor.WithShape(1, 1, 4, 4), tensor.WithBacking(buf[:16]))
		dst := tensor.New(tensor.WithShape(1, 1, 8, 8), tensor.WithBacking(buf[8:72]))
		assert.ErrorIs(t, p.Resize(dst, src), ugo.ErrAlias, "%v: overlapping dst and src", s)
	}
	for _, k := range []*Kernel{nil, {}, {Name: "k", Support: math.NaN(), At: func(float64) float64 { return 1 }},
		{Name: "k", Support: math.Inf(1), At: func(float64) float64 { return 1 }}, {Name: "k", Support: -1, At: func(float64) float64 { return 1 }}} {
		tried++
		_, err := k.Plan(4, 4, 2, 2)
		assert.Error(t, err, "kernel %+v", k)
	}
	_, err := To(nil, hostileDense(1, 1, 2, 2), 4, 4)
	assert.Error(t, err, "nil strategy")
	for _, name := range []string{"", "\x00", strings.Repeat("x", 1<<16), "bicubic "} {
		tried++
		_, err := ByName(name)
		assert.Error(t, err, "ByName(%q)", name)
	}
	prev := ugo.SetMemoryLimit(1 << 20)
	defer ugo.SetMemoryLimit(prev)
	var me *ugo.MemoryError
	_, err = To(Bilinear, hostileDense(64, 4, 8, 8), 256, 256)
	if assert.ErrorAs(t, err, &me, "a 64 MiB result under a 1 MiB limit") {
		assert.Contains(t, err.Error(), fmt.Sprint([]int{64, 4, 256, 256}))
	}
	t.Logf("%d hostile inputs", tried+1)
}
