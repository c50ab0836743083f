package picture

import (
	"fmt"
	"image"
	"math"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
)

// Limits of Grid: the padding, and each side of the picture (PNG's own
// limit is 2^31-1; image.NewRGBA's a few gigabytes).
const (
	maxPad  = 1 << 12
	maxSide = 1 << 20
)

// Grid lays out the N samples of x (N, C, H, W with C = 1 or 3, values in
// [-1, 1]) in rows of cols images separated by pad pixels of mid grey.
// Values are clipped to [-1, 1] and NaN is drawn black, so that a failed
// sample stays visible; a picture beyond 2^20 pixels on a side or
// ugo.MemoryLimit is refused. The picture is an *image.Gray for C = 1 and
// an opaque *image.RGBA for C = 3.
func Grid(x *tensor.Dense, cols, pad int) (image.Image, error) {
	shape, err := ugo.CheckSample("x", x)
	if err != nil {
		return nil, err
	}
	if len(shape) != 4 {
		return nil, fmt.Errorf("picture: x has shape %v, want rank 4 (N, C, H, W)", shape)
	}
	n, c, h, w := shape[0], shape[1], shape[2], shape[3]
	if c != 1 && c != 3 {
		return nil, fmt.Errorf("picture: %d channels, want 1 (grey) or 3 (RGB)", c)
	}
	if cols <= 0 {
		return nil, fmt.Errorf("picture: %d columns, want > 0", cols)
	}
	if pad < 0 || pad > maxPad {
		return nil, fmt.Errorf("picture: padding %d, want 0 to %d", pad, maxPad)
	}
	if cols > n {
		cols = n
	}
	rows := (n + cols - 1) / cols
	// In int64: a large batch of large images must not wrap around.
	width := int64(cols)*int64(w) + int64(cols+1)*int64(pad)
	height := int64(rows)*int64(h) + int64(rows+1)*int64(pad)
	if width > maxSide || height > maxSide {
		return nil, fmt.Errorf("picture: a %dx%d grid, more than %d pixels on a side", width, height, maxSide)
	}
	if err := ugo.CheckMemory(fmt.Sprintf("picture: a %dx%d grid", width, height), ugo.TensorBytes(1, int(width), int(height))); err != nil {
		return nil, err
	}
	data := x.Float32s()
	if c == 1 {
		// One byte per pixel: a PNG of it is 8-bit grey, a third of the
		// RGB bytes to filter and compress.
		img := image.NewGray(image.Rect(0, 0, int(width), int(height)))
		fillGrid(img.Pix, img.Stride, data, n, cols, pad, 1, h, w)
		return img, nil
	}
	img := image.NewRGBA(image.Rect(0, 0, int(width), int(height)))
	fillGrid(img.Pix, img.Stride, data, n, cols, pad, 3, h, w)
	return img, nil
}

// fillGrid writes Grid's picture into pix (rows of stride bytes; one byte
// per pixel for c = 1 grey samples, four for c = 3, RGBA with the alpha byte
// opaque): mid grey everywhere, then the n samples of data (c channels of
// h x w) in rows of cols.
func fillGrid(pix []uint8, stride int, data []float32, n, cols, pad, c, h, w int) {
	bpp := 1
	if c == 3 {
		bpp = 4
	}
	for i := range pix {
		pix[i] = 128
	}
	if bpp == 4 {
		for i := 3; i < len(pix); i += 4 {
			pix[i] = 255
		}
	}
	plane := h * w
	for k := 0; k < n; k++ {
		ox := pad + (k%cols)*(w+pad)
		oy := pad + (k/cols)*(h+pad)
		base := k * c * plane
		for y := 0; y < h; y++ {
			row := pix[(oy+y)*stride+ox*bpp:]
			for xx := 0; xx < w; xx++ {
				for ch := 0; ch < c; ch++ {
					row[xx*bpp+ch] = toByte(data[base+ch*plane+y*w+xx])
				}
			}
		}
	}
}

// WriteGrid writes Grid(x, cols, pad) to path as PNG.
func WriteGrid(path string, x *tensor.Dense, cols, pad int) error {
	img, err := Grid(x, cols, pad)
	if err != nil {
		return err
	}
	return WritePNG(path, img)
}

func toByte(v float32) uint8 {
	if math.IsNaN(float64(v)) {
		return 0
	}
	f := (float64(v) + 1) * 127.5
	if f <= 0 {
		return 0
	}
	if f >= 255 {
		return 255
	}
	return uint8(math.Round(f))
}
