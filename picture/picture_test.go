package picture

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

func TestGridLayoutAndValues(t *testing.T) {
	// Three 1x2x2 grey images in rows of two, padding 1.
	x := tensor.New(tensor.WithShape(3, 1, 2, 2), tensor.WithBacking([]float32{
		-1, 1, 0, 2, // image 0: black, white, mid, clipped white
		-2, -1, -1, -1, // image 1: clipped black
		float32(math.NaN()), 1, 1, 1, // image 2: NaN -> black
	}))
	img, err := Grid(x, 2, 1)
	require.NoError(t, err)
	require.Equal(t, 2*2+3, img.Bounds().Dx())
	require.Equal(t, 2*2+3, img.Bounds().Dy())
	grey := func(px, py int) uint32 { r, _, _, _ := img.At(px, py).RGBA(); return r >> 8 }
	require.Equal(t, uint32(128), grey(0, 0), "padding")
	require.Equal(t, uint32(0), grey(1, 1))
	require.Equal(t, uint32(255), grey(2, 1))
	require.Equal(t, uint32(128), grey(1, 2)) // 0 -> 127.5 rounds to 128
	require.Equal(t, uint32(255), grey(2, 2))
	require.Equal(t, uint32(0), grey(4, 1), "image 1 starts at x = 1+2+1")
	require.Equal(t, uint32(0), grey(1, 4), "image 2 (NaN) on the second row")
	require.Equal(t, uint32(255), grey(2, 4))
}

func TestWriteGridRGB(t *testing.T) {
	x := tensor.New(tensor.WithShape(1, 3, 1, 1), tensor.WithBacking([]float32{1, -1, 0}))
	path := filepath.Join(t.TempDir(), "g.png")
	require.NoError(t, WriteGrid(path, x, 4, 0))
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	r, g, b, _ := img.At(0, 0).RGBA()
	require.Equal(t, []uint32{255, 0, 128}, []uint32{r >> 8, g >> 8, b >> 8})
}

func TestGridErrors(t *testing.T) {
	_, err := Grid(nil, 1, 0)
	require.Error(t, err)
	_, err = Grid(tensor.New(tensor.WithShape(1, 2, 2, 2), tensor.Of(tensor.Float32)), 1, 0)
	require.ErrorContains(t, err, "channels")
	_, err = Grid(tensor.New(tensor.WithShape(1, 1, 2, 2), tensor.Of(tensor.Float32)), 0, 0)
	require.Error(t, err)
	require.Error(t, WriteGrid(filepath.Join(t.TempDir(), "missing", "x.png"), tensor.New(tensor.WithShape(1, 1, 2, 2), tensor.Of(tensor.Float32)), 1, 0))
}

func TestSideBySide(t *testing.T) {
	a, err := Grid(tensor.New(tensor.WithShape(1, 1, 2, 3), tensor.WithBacking([]float32{-1, -1, -1, -1, -1, -1})), 1, 0)
	require.NoError(t, err)
	b, err := Grid(tensor.New(tensor.WithShape(1, 1, 4, 1), tensor.WithBacking([]float32{1, 1, 1, 1})), 1, 0)
	require.NoError(t, err)
	img := SideBySide(2, a, b)
	require.Equal(t, 3+2+1, img.Bounds().Dx())
	require.Equal(t, 4, img.Bounds().Dy())
	r, _, _, _ := img.At(0, 0).RGBA()
	require.Equal(t, uint32(0), r>>8, "a is black")
	r, _, _, _ = img.At(0, 3).RGBA()
	require.Equal(t, uint32(255), r>>8, "below a is white background")
	r, _, _, _ = img.At(5, 3).RGBA()
	require.Equal(t, uint32(255), r>>8, "b is white")
	require.Equal(t, 0, SideBySide(1).Bounds().Dx())
}
