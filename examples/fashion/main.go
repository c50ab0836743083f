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
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/ugo-diffusion/ugo/examples/internal/cli"
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

// flags are the program's settings.
type flags struct {
	modelPath, out string
	n, cols, steps int
	seed           uint64
	threads        int
	device         onnx.Device
}

// parse reads and checks the flags before any work is done.
func parse(args []string, stderr io.Writer) (*flags, error) {
	f := &flags{}
	fs := flag.NewFlagSet("fashion", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.modelPath, "model", "", "ONNX eps-prediction model (default: the shipped testdata/models/fashion_unet.onnx)")
	fs.StringVar(&f.out, "out", "out/demo", "output folder")
	fs.IntVar(&f.n, "n", 16, "images per grid")
	fs.IntVar(&f.cols, "cols", 4, "images per grid row")
	fs.IntVar(&f.steps, "steps", 50, "DDIM steps")
	fs.Uint64Var(&f.seed, "seed", 1, "seed of the first image; image i uses seed+i")
	fs.IntVar(&f.threads, "threads", 0, "ONNX Runtime intra-op threads (0: runtime default)")
	fs.Var(&f.device, "device", "where the model runs: cpu, cuda, cuda:N, tensorrt, tensorrt:N or webgpu")
	if err := cli.Parse(fs, args); err != nil {
		return nil, err
	}
	if f.n <= 0 || f.cols <= 0 || f.steps <= 0 {
		return nil, errors.New("-n, -cols and -steps must be positive")
	}
	// The largest grid: n guided 112x112 samples, with the sampler's and
	// guidance's buffers (about 10 copies).
	if err := cli.First(cli.Threads("threads", f.threads), cli.Between("steps", f.steps, 1, 100000),
		cli.Memory(fmt.Sprintf("-n %d: %d images at 112x112", f.n, f.n), 10, f.n, 1, 112, 112)); err != nil {
		return nil, err
	}
	return f, nil
}

func run() error {
	f, err := parse(os.Args[1:], os.Stderr)
	if err != nil {
		return err
	}
	modelPath, out, n, cols, steps, seed, threads, device := &f.modelPath, &f.out, &f.n, &f.cols, &f.steps, &f.seed, &f.threads, f.device

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
