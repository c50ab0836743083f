// Command fashion is ugo's demo: it samples the shipped Fashion-MNIST model
// (trained at 28x28) at 28x28, and at 56x56 and 112x112 both without and with
// Upsample Guidance, from the same seeds, and writes PNG grids with the
// unguided samples on the left and the guided ones on the right.
//
//	go run ./examples/fashion -out out/demo
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/ugo-diffusion/ugo/examples/internal/fashion"
	"github.com/ugo-diffusion/ugo/onnx"
	"github.com/ugo-diffusion/ugo/picture"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "fashion:", err)
		os.Exit(1)
	}
}

func run() error {
	modelPath := flag.String("model", "", "ONNX eps-prediction model (default: the shipped testdata/models/fashion_unet.onnx)")
	out := flag.String("out", "out/demo", "output folder")
	n := flag.Int("n", 16, "images per grid")
	cols := flag.Int("cols", 4, "images per grid row")
	steps := flag.Int("steps", 50, "DDIM steps")
	seed := flag.Uint64("seed", 1, "seed of the first image; image i uses seed+i")
	threads := flag.Int("threads", 0, "ONNX Runtime intra-op threads (0: runtime default)")
	var device onnx.Device
	flag.Var(&device, "device", "where the model runs: cpu, cuda, cuda:N, tensorrt, tensorrt:N or webgpu")
	flag.Parse()
	if *n <= 0 || *cols <= 0 || *steps <= 0 {
		return errors.New("-n, -cols and -steps must be positive")
	}

	path := *modelPath
	if path == "" {
		p, err := fashion.FindFile("testdata/models/fashion_unet.onnx")
		if err != nil {
			return fmt.Errorf("shipped model: %w (pass -model)", err)
		}
		path = p
	}
	var opts []onnx.Option
	if *threads > 0 {
		opts = append(opts, onnx.WithThreads(*threads, 1))
	}
	model, err := onnx.Open(path, append(opts, device.Options()...)...)
	if err != nil {
		return err
	}
	defer model.Close()
	fmt.Fprintf(os.Stderr, "%s on %v\n", path, model.Info().Providers)
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	seeds := fashion.Seeds(*seed, *n)
	ug := fashion.Guided(1)
	s := &fashion.Sampler{Model: model, Steps: *steps}
	grid := func(set fashion.Setting) (image.Image, error) {
		start := time.Now()
		s.Progress = func(_, step, steps int) {
			fmt.Fprintf(os.Stderr, "\r%-14s step %2d/%d", set.Name, step, steps)
		}
		x, err := s.Sample(ctx, set, seeds, 0)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(os.Stderr, "\r%-14s %d images in %.1fs\n", set.Name, *n, time.Since(start).Seconds())
		return picture.Grid(x, *cols, 2)
	}
	write := func(name string, imgs ...image.Image) error {
		p := filepath.Join(*out, name)
		if err := picture.WritePNG(p, picture.SideBySide(12, imgs...)); err != nil {
			return err
		}
		fmt.Println("wrote", p)
		return nil
	}

	native, err := grid(fashion.Setting{Name: "28 native", Size: 28})
	if err != nil {
		return err
	}
	if err := write("fashion_28.png", native); err != nil {
		return err
	}
	for _, size := range []int{56, 112} {
		plain, err := grid(fashion.Setting{Name: fmt.Sprintf("%d plain", size), Size: size})
		if err != nil {
			return err
		}
		guided, err := grid(fashion.Setting{Name: fmt.Sprintf("%d guided", size), Size: size, Guide: &ug})
		if err != nil {
			return err
		}
		if err := write(fmt.Sprintf("fashion_%d_plain_vs_guided.png", size), plain, guided); err != nil {
			return err
		}
	}
	return nil
}
