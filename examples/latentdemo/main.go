// Command latentdemo draws the text-to-image picture of make demo: the
// Fashion-MNIST latent model trained by tools/latent, prompted with a few
// garments, at its training size (32x32), at 2x without guidance and at 2x
// with Upsample Guidance, from the same seeds.
//
//	go run ./examples/latentdemo -out out/demo
//
// It writes txt2img_<model>.png in the output folder: one row per prompt;
// columns: native (shown at 2x, nearest-neighbour), 2x plain, 2x guided.
package main

import (
	"context"
	"flag"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/onnx"
	"github.com/ugo-diffusion/ugo/picture"
	"github.com/ugo-diffusion/ugo/pipeline"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "latentdemo:", err)
		os.Exit(1)
	}
}

func run() error {
	models := flag.String("models", "testdata/models/fashion_ldm_v", "comma-separated model folders (testdata/models/fashion_ldm_eps is the epsilon-prediction one)")
	out := flag.String("out", "out/demo", "output folder")
	prompts := flag.String("prompts", "a photo of a sneaker;a dress, studio shot;a photo of a handbag;an ankle boot;a pair of trousers",
		"semicolon-separated prompts")
	images := flag.Int("images", 4, "images per prompt and column")
	steps := flag.Int("steps", 25, "DDIM steps")
	cfg := flag.Float64("cfg", 7.5, "classifier-free guidance scale")
	seed := flag.Uint64("seed", 7, "seed of the first prompt (prompt i uses seed+i)")
	flag.Parse()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	ctx := context.Background()
	for _, dir := range strings.Split(*models, ",") {
		start := time.Now()
		m, err := pipeline.Load(dir, pipeline.WithONNXOptions(onnx.WithThreads(1, 1)))
		if err != nil {
			return err
		}
		size := m.Info().SampleSize
		var rows []image.Image
		for i, p := range strings.Split(*prompts, ";") {
			var cols []image.Image
			for _, c := range []struct {
				scale int
				up    *guidance.UpsampleOptions
			}{{1, &guidance.UpsampleOptions{}}, {2, &guidance.UpsampleOptions{}}, {2, nil}} {
				res, err := m.Generate(ctx, pipeline.Request{Prompt: p, Width: c.scale * size, Height: c.scale * size,
					Steps: *steps, GuidanceScale: new(*cfg), Seed: *seed + uint64(i), Images: *images, Upsample: c.up})
				if err != nil {
					m.Close()
					return err
				}
				px := res.Pixels
				if c.scale == 1 {
					px = nearest2x(px)
				}
				img, err := picture.Grid(px, *images, 2)
				if err != nil {
					m.Close()
					return err
				}
				cols = append(cols, img)
			}
			rows = append(rows, picture.SideBySide(12, cols...))
		}
		m.Close()
		path := filepath.Join(*out, "txt2img_"+filepath.Base(dir)+".png")
		if err := picture.WritePNG(path, stack(6, rows...)); err != nil {
			return err
		}
		fmt.Printf("wrote %s (%s; columns: %dx%d, %dx%d plain, %dx%d guided) in %.1fs\n", path, *prompts,
			size, size, 2*size, 2*size, 2*size, 2*size, time.Since(start).Seconds())
	}
	return nil
}

// nearest2x repeats every pixel of x [N, C, H, W] twice along H and W.
func nearest2x(x *tensor.Dense) *tensor.Dense {
	s := x.Shape()
	n, c, h, w := s[0], s[1], s[2], s[3]
	src := x.Float32s()
	dst := make([]float32, n*c*4*h*w)
	for p := 0; p < n*c; p++ {
		for y := 0; y < 2*h; y++ {
			for xx := 0; xx < 2*w; xx++ {
				dst[(p*2*h+y)*2*w+xx] = src[(p*h+y/2)*w+xx/2]
			}
		}
	}
	return tensor.New(tensor.WithShape(n, c, 2*h, 2*w), tensor.WithBacking(dst))
}

// stack places images top to bottom, separated by gap white rows.
func stack(gap int, imgs ...image.Image) image.Image {
	// SideBySide on the transposed layout would need a transpose; a column
	// of rows is built directly.
	width, height := 0, 0
	for i, im := range imgs {
		if i > 0 {
			height += gap
		}
		width = max(width, im.Bounds().Dx())
		height += im.Bounds().Dy()
	}
	out := image.NewRGBA(image.Rect(0, 0, width, height))
	for i := range out.Pix {
		out.Pix[i] = 255
	}
	y := 0
	for _, im := range imgs {
		b := im.Bounds()
		for yy := 0; yy < b.Dy(); yy++ {
			for xx := 0; xx < b.Dx(); xx++ {
				out.Set(xx, y+yy, im.At(b.Min.X+xx, b.Min.Y+yy))
			}
		}
		y += b.Dy() + gap
	}
	return out
}
