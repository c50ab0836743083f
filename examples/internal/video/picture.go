package video

import (
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"math"
	"os"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo/picture"
)

// WriteStrip writes clips x (N,1,F,S,S) as a PNG with one clip per row and
// its frames left to right.
func WriteStrip(path string, x *tensor.Dense) error {
	sh := x.Shape()
	if len(sh) != 5 || sh[1] != 1 {
		return fmt.Errorf("video: strip of shape %v, want N,1,F,H,W", sh)
	}
	frames := tensor.New(tensor.WithShape(sh[0]*sh[2], 1, sh[3], sh[4]), tensor.WithBacking(x.Float32s()))
	return picture.WriteGrid(path, frames, sh[2], 1)
}

// WriteGIF writes clips x (N,1,F,S,S, values in [-1, 1]) as an animated GIF
// that plays them side by side, each pixel drawn as scale x scale, looping
// forever, with delay hundredths of a second per frame.
func WriteGIF(path string, x *tensor.Dense, scale, delay int) (err error) {
	sh := x.Shape()
	if len(sh) != 5 || sh[1] != 1 || scale < 1 || delay < 1 {
		return fmt.Errorf("video: GIF of shape %v, scale %d, delay %d", sh, scale, delay)
	}
	n, f, h, w := sh[0], sh[2], sh[3], sh[4]
	const pad = 2
	pal := make(color.Palette, 256)
	for i := range pal {
		pal[i] = color.Gray{Y: uint8(i)}
	}
	W := n*w*scale + (n-1)*pad
	H := h * scale
	data := x.Float32s()
	anim := &gif.GIF{LoopCount: 0}
	for fr := range f {
		img := image.NewPaletted(image.Rect(0, 0, W, H), pal)
		for i := range img.Pix {
			img.Pix[i] = 128
		}
		for k := range n {
			src := data[(k*f+fr)*h*w:][:h*w]
			x0 := k * (w*scale + pad)
			for y := range H {
				for xx := range w * scale {
					img.Pix[y*img.Stride+x0+xx] = grey(src[(y/scale)*w+xx/scale])
				}
			}
		}
		anim.Image = append(anim.Image, img)
		anim.Delay = append(anim.Delay, delay)
	}
	file, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := file.Close(); err == nil {
			err = cerr
		}
	}()
	return gif.EncodeAll(file, anim)
}

// grey maps [-1, 1] to 0..255, clipping, with NaN black.
func grey(v float32) uint8 {
	if math.IsNaN(float64(v)) || v <= -1 {
		return 0
	}
	if v >= 1 {
		return 255
	}
	return uint8(math.Round(float64(v+1) * 127.5))
}
