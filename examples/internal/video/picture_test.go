package video

import (
	"image/gif"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// WriteGIF writes one GIF frame per clip frame with the clips side by side,
// each pixel scale x scale, and WriteStrip one row per clip.
func TestWriteGIFAndStrip(t *testing.T) {
	const n, f, s = 2, 3, 4
	data := make([]float32, n*f*s*s)
	for k := range n {
		for i := range f {
			for p := range s * s {
				data[(k*f+i)*s*s+p] = float32(k*f+i)/float32(n*f-1)*2 - 1
			}
		}
	}
	x := tensor.New(tensor.WithShape(n, 1, f, s, s), tensor.WithBacking(data))
	dir := t.TempDir()
	require.NoError(t, WriteGIF(filepath.Join(dir, "a.gif"), x, 2, 5))
	file, err := os.Open(filepath.Join(dir, "a.gif"))
	require.NoError(t, err)
	defer file.Close()
	g, err := gif.DecodeAll(file)
	require.NoError(t, err)
	require.Len(t, g.Image, f)
	require.Equal(t, []int{5, 5, 5}, g.Delay)
	for i, img := range g.Image {
		require.Equal(t, n*s*2+2, img.Bounds().Dx())
		require.Equal(t, s*2, img.Bounds().Dy())
		for k := range n {
			want := grey(data[(k*f+i)*s*s])
			r, _, _, _ := img.Palette[img.ColorIndexAt(k*(s*2+2)+1, 3)].RGBA()
			got := uint8(r >> 8)
			require.Equal(t, want, got, "frame %d clip %d", i, k)
		}
	}
	require.NoError(t, WriteStrip(filepath.Join(dir, "a.png"), x))
	pf, err := os.Open(filepath.Join(dir, "a.png"))
	require.NoError(t, err)
	defer pf.Close()
	p, err := png.Decode(pf)
	require.NoError(t, err)
	require.Greater(t, p.Bounds().Dx(), p.Bounds().Dy())
	require.Error(t, WriteGIF(filepath.Join(dir, "b.gif"), x, 0, 5))
	require.Error(t, WriteStrip(filepath.Join(dir, "b.png"), tensor.New(tensor.WithShape(2, 1, 4, 4), tensor.Of(tensor.Float32))))
}
