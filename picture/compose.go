package picture

import (
	"bufio"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"os"
	"sync"
)

// SideBySide places images left to right, top-aligned, separated by gap
// pixels of white. It returns an empty image when given none; nil images
// are skipped.
func SideBySide(gap int, imgs ...image.Image) image.Image {
	if gap < 0 {
		gap = 0
	}
	kept := make([]image.Image, 0, len(imgs))
	for _, im := range imgs {
		if im != nil {
			kept = append(kept, im)
		}
	}
	imgs = kept
	width, height := 0, 0
	for i, im := range imgs {
		b := im.Bounds()
		if i > 0 {
			width += gap
		}
		width += b.Dx()
		height = max(height, b.Dy())
	}
	out := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(out, out.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	x := 0
	for _, im := range imgs {
		b := im.Bounds()
		draw.Draw(out, image.Rect(x, 0, x+b.Dx(), b.Dy()), im, b.Min, draw.Src)
		x += b.Dx() + gap
	}
	return out
}

// WritePNG encodes img as PNG to path.
func WritePNG(path string, img image.Image) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	w := bufio.NewWriter(f)
	if err := EncodePNG(w, img); err != nil {
		return err
	}
	return w.Flush()
}

// EncodePNG writes img to w as PNG: the bytes image/png's Encoder writes,
// with the encoder's buffers (its zlib compressor holds over half a
// megabyte of state) kept for the next call instead of allocated anew, which
// for a small image costs more than the encoding itself. A picture of at
// most StoredPNGBytes bytes of pixels (a 128x128 grey or a 64x64 colour
// picture) is written without compression (png.NoCompression), larger ones
// at image/png's default level: compressing starts by clearing the
// compressor's 640 KB of match tables, which after a model run has evicted
// them from the caches took 0.15 ms for a 32x32 picture, longer than
// writing its few kilobytes more. Safe for concurrent use.
func EncodePNG(w io.Writer, img image.Image) error {
	if pixelBytes(img) <= StoredPNGBytes {
		return storedEncoder.Encode(w, img)
	}
	return pngEncoder.Encode(w, img)
}

// StoredPNGBytes is the largest picture, in bytes of pixels (one per pixel
// for *image.Gray and *image.Paletted, four otherwise), that EncodePNG
// writes without compression.
const StoredPNGBytes = 16 << 10

// pixelBytes is the size of img's pixels as StoredPNGBytes counts them.
func pixelBytes(img image.Image) int64 {
	b := img.Bounds()
	n := int64(b.Dx()) * int64(b.Dy())
	switch img.(type) {
	case *image.Gray, *image.Paletted:
		return n
	}
	return 4 * n
}

var (
	pngEncoder    = png.Encoder{BufferPool: &pngBuffers{}}
	storedEncoder = png.Encoder{CompressionLevel: png.NoCompression, BufferPool: &pngBuffers{}}
)

// pngBuffers is a png.EncoderBufferPool over a sync.Pool.
type pngBuffers struct{ pool sync.Pool }

func (b *pngBuffers) Get() *png.EncoderBuffer {
	e, _ := b.pool.Get().(*png.EncoderBuffer)
	return e
}

func (b *pngBuffers) Put(e *png.EncoderBuffer) { b.pool.Put(e) }
