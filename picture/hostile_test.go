package picture

import (
	"image"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
)

func TestHostileGrid(t *testing.T) {
	d := func(shape ...int) *tensor.Dense {
		n := 1
		for _, v := range shape {
			n *= v
		}
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(make([]float32, n)))
	}
	transposed := d(1, 1, 2, 3)
	require.NoError(t, transposed.T(0, 1, 3, 2))
	cases := []struct {
		name      string
		x         *tensor.Dense
		cols, pad int
	}{
		{"nil", nil, 1, 0}, {"zero", &tensor.Dense{}, 1, 0}, {"transposed", transposed, 1, 0},
		{"rank 5", d(1, 1, 1, 2, 2), 1, 0}, {"2 channels", d(1, 2, 2, 2), 1, 0}, {"7 channels", d(1, 7, 2, 2), 1, 0},
		{"cols 0", d(1, 1, 2, 2), 0, 0}, {"cols -1", d(1, 1, 2, 2), -1, 0}, {"pad -5", d(1, 1, 2, 2), 1, -5},
		{"pad 2^40", d(2, 1, 2, 2), 1, 1 << 40}, {"pad 2^31", d(2, 1, 2, 2), 1, 1 << 31},
		{"too wide", d(1<<12, 1, 1, 1<<10), 1 << 12, 0},
	}
	for _, c := range cases {
		_, err := Grid(c.x, c.cols, c.pad)
		if assert.Error(t, err, c.name) {
			assert.NotContains(t, err.Error(), "%!", c.name)
		}
	}
	prev := ugo.SetMemoryLimit(1 << 10)
	defer ugo.SetMemoryLimit(prev)
	var me *ugo.MemoryError
	_, err := Grid(d(4, 1, 32, 32), 2, 1)
	assert.ErrorAs(t, err, &me, "a grid over the memory limit")
	ugo.SetMemoryLimit(prev)
	// SideBySide skips nil images and never panics.
	img := SideBySide(-3, nil, image.NewGray(image.Rect(0, 0, 2, 3)), nil)
	assert.Equal(t, image.Pt(2, 3), img.Bounds().Size(), "SideBySide with nils")
	assert.True(t, SideBySide(5).Bounds().Empty(), "SideBySide of nothing: %v", SideBySide(5).Bounds())
	t.Logf("%d hostile inputs", len(cases)+3)
}
