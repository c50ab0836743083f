package picture

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
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

// EncodePNG writes image/png's bytes and reuses the encoder's buffers: after
// a first call, an encode allocates a small fraction of png.Encode's bytes.
// Pictures of at most StoredPNGBytes bytes of pixels are stored, larger
// ones compressed at the default level (the sizes straddle the limit).
func TestEncodePNG(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, size := range [][2]int{{1, 1}, {32, 32}, {64, 48}, {129, 7}, {64, 64}, {64, 65}, {128, 128}, {128, 129}} {
		for _, kind := range []string{"rgba", "gray"} {
			var img image.Image
			r := image.Rect(0, 0, size[0], size[1])
			if kind == "rgba" {
				m := image.NewRGBA(r)
				for i := range m.Pix {
					m.Pix[i] = uint8(rng.IntN(256))
					if i%4 == 3 && size[0]%2 == 0 {
						m.Pix[i] = 255 // opaque: written as RGB
					}
				}
				img = m
			} else {
				m := image.NewGray(r)
				for i := range m.Pix {
					m.Pix[i] = uint8(rng.IntN(4) * 60)
				}
				img = m
			}
			var want, got bytes.Buffer
			enc := png.Encoder{}
			if pixelBytes(img) <= StoredPNGBytes {
				enc.CompressionLevel = png.NoCompression
			}
			if err := enc.Encode(&want, img); err != nil {
				t.Fatal(err)
			}
			if err := EncodePNG(&got, img); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(want.Bytes(), got.Bytes()) {
				t.Fatalf("%s %v: EncodePNG wrote %d bytes differing from png.Encode's %d", kind, size, got.Len(), want.Len())
			}
			back, err := png.Decode(&got)
			if err != nil {
				t.Fatal(err)
			}
			for y := range size[1] {
				for x := range size[0] {
					if kind == "rgba" && size[0]%2 != 0 {
						continue // random alpha: not a valid premultiplied colour to compare
					}
					if color.RGBAModel.Convert(back.At(x, y)) != color.RGBAModel.Convert(img.At(x, y)) {
						t.Fatalf("%s %v: pixel (%d, %d) decodes as %v, was %v", kind, size, x, y, back.At(x, y), img.At(x, y))
					}
				}
			}
		}
	}
	if raceEnabled {
		t.Log("allocation check skipped: the race detector makes sync.Pool drop buffers at random")
		return
	}
	img := image.NewRGBA(image.Rect(0, 0, 96, 96)) // compressed
	bytesPer := func(f func() error) uint64 {
		if err := f(); err != nil { // warm up (and fill the pool)
			t.Fatal(err)
		}
		var a, b runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&a)
		for range 20 {
			if err := f(); err != nil {
				t.Fatal(err)
			}
		}
		runtime.ReadMemStats(&b)
		return (b.TotalAlloc - a.TotalAlloc) / 20
	}
	plain := bytesPer(func() error { return png.Encode(io.Discard, img) })
	pooled := bytesPer(func() error { return EncodePNG(io.Discard, img) })
	t.Logf("bytes allocated per 96x96 encode: png.Encode %d, EncodePNG %d", plain, pooled)
	if pooled*10 > plain {
		t.Errorf("EncodePNG allocates %d bytes per encode, png.Encode %d: the buffers are not reused", pooled, plain)
	}
}

func TestGridPixelTypes(t *testing.T) {
	// Grey samples make an *image.Gray, RGB samples an opaque *image.RGBA
	// with each channel from its own plane.
	g, err := Grid(tensor.New(tensor.WithShape(1, 1, 1, 2), tensor.WithBacking([]float32{-1, 1})), 1, 1)
	require.NoError(t, err)
	gray, ok := g.(*image.Gray)
	require.True(t, ok, "%T", g)
	require.Equal(t, []uint8{128, 128, 128, 128, 128, 0, 255, 128, 128, 128, 128, 128}, gray.Pix)

	// Two 1x2 RGB images side by side, no padding: planes R, G, B.
	x := tensor.New(tensor.WithShape(2, 3, 1, 2), tensor.WithBacking([]float32{
		-1, 1, 0, 0, 1, -1, // image 0: R = (0, 255), G = (128, 128), B = (255, 0)
		1, 1, -1, -1, 0, 0, // image 1: R = 255, G = 0, B = 128
	}))
	c, err := Grid(x, 2, 0)
	require.NoError(t, err)
	rgba, ok := c.(*image.RGBA)
	require.True(t, ok, "%T", c)
	require.Equal(t, []uint8{
		0, 128, 255, 255, 255, 128, 0, 255,
		255, 0, 128, 255, 255, 0, 128, 255,
	}, rgba.Pix)
}
