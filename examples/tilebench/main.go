// Command tilebench measures what tiled denoising (package tiling) saves in
// memory when sampling above the training size with Upsample Guidance, on
// two shipped models:
//
//   - fashion: the Fashion-MNIST pixel model (testdata/models/fashion_unet.onnx,
//     trained at 28x28), DDIM sampling at 28*f x 28*f;
//   - ldm: the text-to-image latent model (testdata/models/fashion_ldm_eps,
//     trained at 32x32 pixels, 8x8 latents) end to end through
//     pipeline.Generate: text encoder, UNet under classifier-free guidance,
//     VAE decoder, at 32*f x 32*f pixels.
//
// For each model, factor f (-factors, default 2,4,8) and mode it runs one
// generation in a child process of its own and reports the child's peak
// resident set size (getrusage's ru_maxrss), its Go heap allocations
// during sampling (bytes and objects, runtime.MemStats), the number of
// model calls and the wall time. The modes are
//
//   - full: Upsample Guidance with both calls on the whole canvas (and, for
//     ldm, the VAE decoding the whole image);
//   - tiled: the high-resolution call in tiles of the training size
//     (tiling.Options with its defaults: overlap a quarter of the tile,
//     linear blending), the low-resolution call whole at the training size
//     (guidance.UpsampleHighLow; for ldm pipeline.Request.Tile, with the VAE
//     decoding in tiles of the training size as well);
//
// plus a baseline child per model that loads it and makes one call at the
// training size. Times are reported as the ratio tiled/full at the same
// factor only: on a shared machine absolute times mean little.
//
// It prints a Markdown table and, with -plot FILE, draws peak RSS against
// output pixels as a PNG (gonum.org/v1/plot). Typical use, from the
// repository root:
//
//	go run ./examples/tilebench -plot docs/tiling/memory.png
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/examples/internal/cli"
	"github.com/ugo-diffusion/ugo/examples/internal/fashion"
	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/onnx"
	"github.com/ugo-diffusion/ugo/pipeline"
	"github.com/ugo-diffusion/ugo/sampler"
	"github.com/ugo-diffusion/ugo/tiling"
)

// Modes and models.
const (
	modeBase  = "baseline"
	modeFull  = "full"
	modeTiled = "tiled"

	modelFashion = "fashion"
	modelLDM     = "ldm"
)

var (
	allModels = []string{modelFashion, modelLDM}
	runModes  = []string{modeFull, modeTiled}
)

// options are the parsed flags.
type options struct {
	models  []string
	factors []int
	steps   int
	n       int
	threads int
	plot    string
	json    string
	fashion string
	ldm     string

	// child runs one measurement (set by the parent).
	child  bool
	model  string
	mode   string
	factor int
}

const maxFactor = 16

func parse(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("tilebench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	models := fs.String("models", "fashion,ldm", "comma-separated models: fashion, ldm")
	factors := fs.String("factors", "2,4,8", "comma-separated upsampling factors over the training size")
	fs.IntVar(&o.steps, "steps", 20, "sampling steps")
	fs.IntVar(&o.n, "n", 1, "images per run")
	fs.IntVar(&o.threads, "threads", 1, "ONNX Runtime intra-op threads")
	fs.StringVar(&o.plot, "plot", "", "write the peak-RSS plot to this PNG file")
	fs.StringVar(&o.json, "json", "", "write the measurements to this JSON file")
	fs.StringVar(&o.fashion, "fashion-model", "", "the Fashion-MNIST ONNX model (default: the shipped one)")
	fs.StringVar(&o.ldm, "ldm-model", "", "the latent model folder (default: testdata/models/fashion_ldm_eps)")
	fs.BoolVar(&o.child, "child", false, "internal: run one measurement")
	fs.StringVar(&o.model, "child-model", "", "internal")
	fs.StringVar(&o.mode, "child-mode", "", "internal")
	fs.IntVar(&o.factor, "child-factor", 0, "internal")
	if err := cli.Parse(fs, args); err != nil {
		return nil, err
	}
	if err := cli.First(cli.Between("steps", o.steps, 1, 1000), cli.Between("n", o.n, 1, 64), cli.Threads("threads", o.threads)); err != nil {
		return nil, err
	}
	for _, m := range cli.Split(*models) {
		if !slices.Contains(allModels, m) {
			return nil, fmt.Errorf("-models: unknown model %q, want fashion or ldm", m)
		}
		if !slices.Contains(o.models, m) {
			o.models = append(o.models, m)
		}
	}
	if len(o.models) == 0 {
		return nil, errors.New("-models: no model")
	}
	for _, s := range cli.Split(*factors) {
		f, err := strconv.Atoi(s)
		if err != nil || f < 1 || f > maxFactor {
			return nil, fmt.Errorf("-factors: %q, want integers from 1 to %d", s, maxFactor)
		}
		if !slices.Contains(o.factors, f) {
			o.factors = append(o.factors, f)
		}
	}
	if len(o.factors) == 0 {
		return nil, errors.New("-factors: no factor")
	}
	slices.Sort(o.factors)
	if o.child {
		if !slices.Contains(allModels, o.model) || !slices.Contains([]string{modeBase, modeFull, modeTiled}, o.mode) || o.factor < 1 || o.factor > maxFactor {
			return nil, fmt.Errorf("-child: model %q, mode %q, factor %d", o.model, o.mode, o.factor)
		}
	}
	return o, nil
}

// result is one child's measurement.
type result struct {
	Model  string `json:"model"`
	Mode   string `json:"mode"`
	Factor int    `json:"factor"`
	// Pixels is the output size, H*W pixels of one image.
	Pixels int `json:"pixels"`
	// Side is the output side in pixels.
	Side int `json:"side"`
	// PeakRSS is the child's peak resident set size in bytes.
	PeakRSS int64 `json:"peak_rss"`
	// AllocBytes and Allocs are the Go heap allocations during the run.
	AllocBytes uint64 `json:"alloc_bytes"`
	Allocs     uint64 `json:"allocs"`
	// Calls is the number of model calls (fashion only: pipeline.Generate
	// does not expose the UNet's); Seconds the wall time of the run.
	Calls   int64   `json:"calls"`
	Seconds float64 `json:"seconds"`
}

func main() {
	o, err := parse(os.Args[1:], os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "tilebench:", err)
		os.Exit(2)
	}
	if o.child {
		r, err := measure(context.Background(), o)
		if err != nil {
			fmt.Fprintln(os.Stderr, "tilebench:", err)
			os.Exit(1)
		}
		if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
			os.Exit(1)
		}
		return
	}
	if err := run(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "tilebench:", err)
		os.Exit(1)
	}
}

// run measures every model, factor and mode, each in a child process, and
// prints the table.
func run(o *options, w io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	var results []result
	for _, m := range o.models {
		jobs := [][2]any{{modeBase, 1}}
		for _, f := range o.factors {
			for _, mode := range runModes {
				jobs = append(jobs, [2]any{mode, f})
			}
		}
		for _, j := range jobs {
			r, err := child(exe, o, m, j[0].(string), j[1].(int))
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "%s %s %dx: peak RSS %.1f MiB, %.2f s\n", r.Model, r.Mode, r.Factor, mib(r.PeakRSS), r.Seconds)
			results = append(results, r)
		}
	}
	table(w, o, results)
	if o.json != "" {
		b, err := json.MarshalIndent(results, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.json, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if o.plot != "" {
		return plotRSS(o.plot, results)
	}
	return nil
}

// child runs one measurement in a fresh process and adds its peak RSS.
func child(exe string, o *options, model, mode string, factor int) (result, error) {
	args := []string{"-child", "-child-model", model, "-child-mode", mode, "-child-factor", strconv.Itoa(factor),
		"-steps", strconv.Itoa(o.steps), "-n", strconv.Itoa(o.n), "-threads", strconv.Itoa(o.threads)}
	if o.fashion != "" {
		args = append(args, "-fashion-model", o.fashion)
	}
	if o.ldm != "" {
		args = append(args, "-ldm-model", o.ldm)
	}
	cmd := exec.Command(exe, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return result{}, fmt.Errorf("%s %s %dx: %w", model, mode, factor, err)
	}
	var r result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return result{}, fmt.Errorf("%s %s %dx: %w", model, mode, factor, err)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return result{}, errors.New("no rusage for the child process")
	}
	r.PeakRSS = ru.Maxrss * 1024 // kilobytes on Linux
	return r, nil
}

// counter counts model calls.
type counter struct {
	model ugo.Denoiser
	n     atomic.Int64
}

func (c *counter) PredictNoise(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
	c.n.Add(1)
	return c.model.PredictNoise(ctx, dst, x, t)
}

// measure runs one generation (in the child).
func measure(ctx context.Context, o *options) (result, error) {
	r := result{Model: o.model, Mode: o.mode, Factor: o.factor}
	onnxOpts := []onnx.Option{onnx.WithThreads(o.threads, 1)}
	var before, after runtime.MemStats
	switch o.model {
	case modelFashion:
		path := o.fashion
		if path == "" {
			p, err := fashion.FindFile("testdata/models/fashion_unet.onnx", "../../testdata/models/fashion_unet.onnx")
			if err != nil {
				return r, err
			}
			path = p
		}
		m, err := onnx.Open(path, onnxOpts...)
		if err != nil {
			return r, err
		}
		defer m.Close()
		calls := &counter{model: m}
		size := fashion.TrainedSize * o.factor
		r.Side, r.Pixels = size, size*size
		var model ugo.Denoiser = calls
		steps := o.steps
		var clamp sampler.Hook
		if o.mode == modeBase {
			steps = 1
		} else if o.factor > 1 {
			opts := fashion.Guided(1)
			opts.Factors = []int{o.factor, o.factor}
			high := model
			if o.mode == modeTiled {
				if high, err = tiling.Tiled(calls, tiling.Options{Size: [2]int{fashion.TrainedSize, fashion.TrainedSize}}); err != nil {
					return r, err
				}
			}
			if model, err = guidance.UpsampleHighLow(high, calls, fashion.Schedule(), opts); err != nil {
				return r, err
			}
			if clamp, err = fashion.Clamp(opts); err != nil {
				return r, err
			}
		}
		solver, err := fashion.NewSolver("ddim", false)
		if err != nil {
			return r, err
		}
		x := tensor.New(tensor.WithShape(o.n, 1, size, size), tensor.Of(tensor.Float32))
		fashion.SeedNoise(x.Float32s(), fashion.Seeds(1, o.n))
		runtime.ReadMemStats(&before)
		start := time.Now()
		if err := sampler.Sample(ctx, model, solver, x, sampler.Options{Steps: steps, Hook: clamp}); err != nil {
			return r, err
		}
		r.Seconds = time.Since(start).Seconds()
		runtime.ReadMemStats(&after)
		r.Calls = calls.n.Load()
	case modelLDM:
		dir := o.ldm
		if dir == "" {
			p, err := fashion.FindFile("testdata/models/fashion_ldm_eps/model_index.json", "../../testdata/models/fashion_ldm_eps/model_index.json")
			if err != nil {
				return r, err
			}
			dir = p[:len(p)-len("/model_index.json")]
		}
		m, err := pipeline.Load(dir, pipeline.WithONNXOptions(onnxOpts...))
		if err != nil {
			return r, err
		}
		defer m.Close()
		trained := m.Info().SampleSize
		side := trained * o.factor
		r.Side, r.Pixels = side, side*side
		req := pipeline.Request{Prompt: "a shirt", Width: side, Height: side, Steps: o.steps, Seed: 1, Images: o.n,
			Decode: pipeline.DecodeOptions{Tiling: pipeline.TileNever}}
		if o.mode == modeBase {
			req.Steps = 1
		}
		if o.mode == modeTiled {
			lat := trained / m.Info().VAEScale
			req.Tile = &tiling.Options{}
			req.Decode = pipeline.DecodeOptions{Tiling: pipeline.TileAlways, TileSize: lat, Overlap: max(lat/4, 1)}
		}
		runtime.ReadMemStats(&before)
		start := time.Now()
		if _, err := m.Generate(ctx, req); err != nil {
			return r, err
		}
		r.Seconds = time.Since(start).Seconds()
		runtime.ReadMemStats(&after)
	}
	r.AllocBytes = after.TotalAlloc - before.TotalAlloc
	r.Allocs = after.Mallocs - before.Mallocs
	return r, nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// table prints the measurements as Markdown.
func table(w io.Writer, o *options, rs []result) {
	fmt.Fprintf(w, "%d steps, %d image(s) per run, %d ONNX Runtime thread(s); one child process per row\n\n", o.steps, o.n, o.threads)
	fmt.Fprintln(w, "| model | factor | output | mode | peak RSS (MiB) | Go allocations (MiB) | Go objects | model calls | time tiled/full |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	full := map[string]float64{}
	for _, r := range rs {
		if r.Mode == modeFull {
			full[fmt.Sprint(r.Model, r.Factor)] = r.Seconds
		}
	}
	for _, r := range rs {
		ratio, calls := "", ""
		if f := full[fmt.Sprint(r.Model, r.Factor)]; r.Mode == modeTiled && f > 0 {
			ratio = fmt.Sprintf("%.2f", r.Seconds/f)
		}
		if r.Calls > 0 {
			calls = strconv.FormatInt(r.Calls, 10)
		}
		fmt.Fprintf(w, "| %s | %dx | %dx%d | %s | %.1f | %.2f | %d | %s | %s |\n", r.Model, r.Factor, r.Side, r.Side, r.Mode,
			mib(r.PeakRSS), float64(r.AllocBytes)/(1<<20), r.Allocs, calls, ratio)
	}
}
