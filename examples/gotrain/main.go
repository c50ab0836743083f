// Command gotrain trains a small diffusion model entirely in Go, with
// gorgonia, on Fashion-MNIST downsampled to 14x14, then samples it with
// DDIM at 14x14 (its native size) and at 28x28 both without and with
// Upsample Guidance, from the same seeds, and writes PNG grids.
//
//	go run ./examples/gotrain -minutes 4 -out out/gotrain
//	go run ./examples/gotrain -load out/gotrain/weights.bin -out out/gotrain
//
// The network is graphmodel/convnet's (DefaultConfig, 61k parameters; -width
// changes its width); its timestep conditioning, v-prediction loss and Adam
// solver are described there. The schedule is diffusers' default (linear
// betas 1e-4..0.02, T = 1000). Training runs for -minutes (or -max-steps)
// on random batches of -batch images, printing the step, the mean loss
// since the last line and the speed every -every; an interrupt (Ctrl-C)
// ends training early, saves the weights and exits. The weights go to
// <out>/weights.bin (the moving average of the parameters unless -ema 0),
// the pictures to <out>/samples_14.png, samples_28_plain.png,
// samples_28_guided.png and samples_28_plain_vs_guided.png (plain left,
// guided right). Sampling uses DDIM with -steps steps and image i starts
// from noise.NewTorchCPU(seed+i), in every setting.
//
// Training takes both cores when it can: run it with GOMAXPROCS=1 beside
// another job.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/examples/internal/cli"
	"github.com/ugo-diffusion/ugo/examples/internal/fashion"
	"github.com/ugo-diffusion/ugo/graphmodel/convnet"
	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/picture"
	"github.com/ugo-diffusion/ugo/resize"
	"github.com/ugo-diffusion/ugo/sampler"
	"github.com/ugo-diffusion/ugo/schedule"
)

const defaultData = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gotrain:", err)
		os.Exit(1)
	}
}

// options are the command-line flags.
type options struct {
	minutes   float64
	maxSteps  int
	every     time.Duration
	out       string
	load      string
	data      string
	images    int
	size      int
	batch     int
	lr        float64
	ema       float64
	seed      uint64
	n, cols   int
	steps     int
	sizes     []int
	netConfig convnet.Config
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{netConfig: convnet.DefaultConfig()} // its schedule is run's sched
	fs := flag.NewFlagSet("gotrain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Float64Var(&o.minutes, "minutes", 4, "training time in minutes")
	fs.IntVar(&o.maxSteps, "max-steps", 0, "stop training after this many steps (0: no limit)")
	fs.DurationVar(&o.every, "every", 15*time.Second, "interval between progress lines")
	fs.StringVar(&o.out, "out", "out/gotrain", "output folder (weights and pictures)")
	fs.StringVar(&o.load, "load", "", "weights file to sample from; skips training")
	fs.StringVar(&o.data, "data", defaultData, "Fashion-MNIST training images (gzipped IDX)")
	fs.IntVar(&o.images, "images", 0, "use only the first N training images (0: all)")
	fs.IntVar(&o.size, "size", 14, "training resolution: the 28x28 images are area-downsampled by 28/size")
	fs.IntVar(&o.batch, "batch", 32, "training batch size")
	fs.Float64Var(&o.lr, "lr", 2e-3, "Adam learning rate")
	fs.Float64Var(&o.ema, "ema", 0.995, "decay of the parameters' moving average used for sampling (0: off)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the initial weights and of training; image i is sampled from seed+i")
	fs.IntVar(&o.n, "n", 16, "images per grid")
	fs.IntVar(&o.cols, "cols", 4, "images per grid row")
	fs.IntVar(&o.steps, "steps", 50, "DDIM steps")
	sizes := fs.String("sizes", "", "comma-separated multiples of the training size to sample plain and guided (default: 2x)")
	fs.IntVar(&o.netConfig.Width, "width", o.netConfig.Width, "feature channels of the network (ignored with -load)")
	if err := cli.Parse(fs, args); err != nil {
		return nil, err
	}
	if err := cli.First(cli.Finite("lr", o.lr, 1e-12, 10), cli.Finite("ema", o.ema, 0, 0.999999),
		cli.Finite("minutes", o.minutes, 0, 1e6), cli.Between("width", o.netConfig.Width, 1, 4096),
		cli.Between("steps", o.steps, 1, 100000), cli.Between("batch", o.batch, 1, 1<<16)); err != nil {
		return nil, err
	}
	switch {
	case o.n <= 0 || o.cols <= 0 || o.steps <= 0 || o.batch <= 0:
		return nil, errors.New("-n, -cols, -steps and -batch must be positive")
	case o.size <= 0 || 28%o.size != 0:
		return nil, fmt.Errorf("-size %d must divide 28", o.size)
	case o.minutes < 0 || o.maxSteps < 0 || o.images < 0 || o.every <= 0:
		return nil, errors.New("-minutes, -max-steps and -images must be >= 0, -every positive")
	}
	o.sizes = []int{2 * o.size}
	if *sizes != "" {
		o.sizes = nil
		for _, s := range strings.Split(*sizes, ",") {
			v, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || v <= o.size || v%o.size != 0 || v > 1<<14 {
				return nil, fmt.Errorf("-sizes: %q is not a multiple of %d above it (up to 16384)", s, o.size)
			}
			o.sizes = append(o.sizes, v)
		}
	}
	largest := slices.Max(o.sizes)
	if err := cli.First(
		cli.Memory(fmt.Sprintf("-n %d images of %dx%d", o.n, largest, largest), 10, o.n, 1, largest, largest),
		cli.Memory(fmt.Sprintf("-batch %d at %dx%d with the network's activations", o.batch, o.size, o.size), 64*o.netConfig.Width, o.batch, 1, o.size, o.size),
	); err != nil {
		return nil, err
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parseFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	sched := schedule.Linear(1000, 1e-4, 0.02)

	var net *convnet.Net
	if o.load != "" {
		if net, err = convnet.Load(o.load); err != nil {
			return err
		}
		if err := sameSchedule(net, sched); err != nil {
			return fmt.Errorf("%s: %w", o.load, err)
		}
		fmt.Fprintf(stdout, "loaded %s (%d parameters)\n", o.load, net.NumParams())
	} else {
		if net, err = train(ctx, o, sched, stdout); err != nil {
			return err
		}
	}
	return sample(ctx, o, net, sched, stdout)
}

// sameSchedule checks that net was trained with schedule s.
func sameSchedule(net *convnet.Net, s *schedule.Schedule) error {
	got, want := net.Config().AlphasCumprod, s.AlphasCumprod()
	if len(got) != len(want) {
		return fmt.Errorf("the network's schedule has %d steps, this program samples with %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Errorf("the network was trained with another schedule (alphas_cumprod[%d] = %v, want %v)", i, got[i], want[i])
		}
	}
	return nil
}

// train trains a fresh network and saves it; an interrupt ends training,
// saves what was learnt and returns the context's error.
func train(ctx context.Context, o *options, sched *schedule.Schedule, stdout io.Writer) (*convnet.Net, error) {
	images, err := loadImages(o)
	if err != nil {
		return nil, err
	}
	per := o.size * o.size
	count := len(images) / per
	net, err := convnet.New(o.netConfig, o.seed)
	if err != nil {
		return nil, err
	}
	tr, err := convnet.NewTrainer(net, convnet.TrainConfig{
		Batch: o.batch, Height: o.size, Width: o.size,
		LearningRate: o.lr, EMADecay: o.ema, Seed: o.seed,
	})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stdout, "training %d parameters on %d images of %dx%d, batch %d, for %.3g minutes\n",
		net.NumParams(), count, o.size, o.size, o.batch, o.minutes)

	rng := rand.New(rand.NewPCG(o.seed, 1))
	order := rng.Perm(count)
	next := 0
	x0 := make([]float32, o.batch*per)
	start := time.Now()
	deadline := start.Add(time.Duration(o.minutes * float64(time.Minute)))
	lastPrint, lastSteps := start, 0
	var lossSum float64
	var lossN int
	for (o.maxSteps == 0 || tr.Steps() < o.maxSteps) && time.Now().Before(deadline) && ctx.Err() == nil {
		for b := 0; b < o.batch; b++ {
			if next == count {
				rng.Shuffle(count, func(i, j int) { order[i], order[j] = order[j], order[i] })
				next = 0
			}
			i := order[next]
			next++
			copy(x0[b*per:(b+1)*per], images[i*per:(i+1)*per])
		}
		loss, err := tr.Step(x0)
		if err != nil {
			return nil, err
		}
		lossSum += float64(loss)
		lossN++
		if now := time.Now(); now.Sub(lastPrint) >= o.every {
			fmt.Fprintf(stdout, "step %5d  loss %.4f  %.2f steps/s  %s\n", tr.Steps(), lossSum/float64(lossN),
				float64(tr.Steps()-lastSteps)/now.Sub(lastPrint).Seconds(), now.Sub(start).Round(time.Second))
			lastPrint, lastSteps, lossSum, lossN = now, tr.Steps(), 0, 0
		}
	}
	elapsed := time.Since(start)
	if lossN > 0 {
		fmt.Fprintf(stdout, "step %5d  loss %.4f\n", tr.Steps(), lossSum/float64(lossN))
	}
	fmt.Fprintf(stdout, "trained %d steps in %s: %.2f steps/s at batch %d\n", tr.Steps(), elapsed.Round(time.Second),
		float64(tr.Steps())/elapsed.Seconds(), o.batch)

	final := net
	if e := tr.EMA(); e != nil {
		final = e
	}
	path := filepath.Join(o.out, "weights.bin")
	if err := final.Save(path); err != nil {
		return nil, err
	}
	fmt.Fprintln(stdout, "wrote", path)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("interrupted after %d steps (weights saved; sample with -load %s): %w", tr.Steps(), path, err)
	}
	return final, nil
}

// loadImages reads the training images, keeps -images of them and
// downsamples them to -size.
func loadImages(o *options) ([]float32, error) {
	path, err := fashion.FindFile(o.data)
	if err != nil {
		return nil, fmt.Errorf("training data: %w (install Debian's dataset-fashion-mnist, `make data`, or pass -data)", err)
	}
	data, n, h, w, err := fashion.ReadIDXImages(path)
	if err != nil {
		return nil, err
	}
	if h != 28 || w != 28 {
		return nil, fmt.Errorf("%s: %dx%d images, want 28x28", path, h, w)
	}
	if o.images > 0 && o.images < n {
		n = o.images
		data = data[:n*h*w]
	}
	if o.size == 28 {
		return data, nil
	}
	plan, err := resize.Area.Plan(o.size, o.size, h, w)
	if err != nil {
		return nil, err
	}
	small := make([]float32, n*o.size*o.size)
	plan.Scale(small, data)
	return small, nil
}

// sample draws o.n images at the training size, and at each of o.sizes
// without and with Upsample Guidance, from seeds o.seed+i, and writes the
// grids.
func sample(ctx context.Context, o *options, net *convnet.Net, sched *schedule.Schedule, stdout io.Writer) error {
	model, err := net.Denoiser()
	if err != nil {
		return err
	}
	ddim, err := sampler.NewDDIM(schedule.DefaultConfig())
	if err != nil {
		return err
	}
	ddim.Schedule = sched
	// The whole update from the clipped x0, which guidance's block-wise x0
	// clamp (guidance.BlockClamp below) keeps on the native path.
	ddim.UseClippedModelOutput = true
	seeds := fashion.Seeds(o.seed, o.n)
	draw := func(name string, m ugo.Denoiser, hook sampler.Hook, size int) (image.Image, error) {
		start := time.Now()
		data := make([]float32, o.n*size*size)
		fashion.SeedNoise(data, seeds)
		x := tensor.New(tensor.WithShape(o.n, 1, size, size), tensor.WithBacking(data))
		if err := sampler.Sample(ctx, m, ddim, x, sampler.Options{Steps: o.steps, Hook: hook}); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		fmt.Fprintf(stdout, "%-10s %d images, %d DDIM steps in %.1fs\n", name, o.n, o.steps, time.Since(start).Seconds())
		return picture.Grid(x, o.cols, 2)
	}
	write := func(name string, img image.Image) error {
		p := filepath.Join(o.out, name)
		if err := picture.WritePNG(p, img); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "wrote", p)
		return nil
	}

	native, err := draw(fmt.Sprintf("%d native", o.size), model, nil, o.size)
	if err != nil {
		return err
	}
	if err := write(fmt.Sprintf("samples_%d.png", o.size), native); err != nil {
		return err
	}
	for _, size := range o.sizes {
		f := size / o.size
		plain, err := draw(fmt.Sprintf("%d plain", size), model, nil, size)
		if err != nil {
			return err
		}
		opts := guidance.DefaultUpsampleOptions()
		opts.Factors = []int{f, f}
		guided, err := guidance.Upsample(model, sched, opts)
		if err != nil {
			return err
		}
		clamp, err := guidance.BlockClamp(sched, opts, 1) // the images are in [-1, 1], as DDIM clips x0
		if err != nil {
			return err
		}
		withUG, err := draw(fmt.Sprintf("%d guided", size), guided, clamp, size)
		if err != nil {
			return err
		}
		for _, w := range []struct {
			name string
			img  image.Image
		}{
			{fmt.Sprintf("samples_%d_plain.png", size), plain},
			{fmt.Sprintf("samples_%d_guided.png", size), withUG},
			{fmt.Sprintf("samples_%d_plain_vs_guided.png", size), picture.SideBySide(12, plain, withUG)},
		} {
			if err := write(w.name, w.img); err != nil {
				return err
			}
		}
	}
	st := model.Stats()
	fmt.Fprintf(stdout, "graph cache: %d shapes compiled, %d hits\n", st.Compiles, st.Hits)
	return nil
}
