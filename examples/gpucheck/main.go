// Command gpucheck compares a GPU execution provider with ONNX Runtime's CPU
// provider on the shipped Fashion-MNIST UNet (trained at 28x28) and times
// both. For each size (-sizes, multiples of 28), each mode (plain sampling,
// and above 28 also Upsample Guidance at size/28) and each batch (-batches),
// it
//
//   - calls the model (plain) or the guided denoiser once on the same input
//     on both devices and reports the largest absolute difference of the
//     outputs (and the largest output magnitude, for scale);
//   - samples with DDIM (-steps) from the same seeds on both devices and
//     reports the largest absolute difference of the final samples; this run
//     also warms each session up for the shape (WebGPU compiles its shaders
//     on first use);
//   - once every setting is compared, times up to -runs more sampling runs
//     of each setting on each device, in rounds over the settings (CPU then
//     device), and reports the medians, the device's speedup and the
//     guided/plain ratio on each device.
//
// It prints one Markdown table. Sampling is the demo's (examples/fashion):
// DDIM with diffusers' defaults on the model's linear schedule, image i from
// noise.NewTorchCPU(seed i+1), guidance fashion.Guided(1).
//
// When the device cannot be opened (no GPU, no Vulkan driver), it says so,
// with ONNX Runtime's error and the onnx package's hint, still prints the CPU
// columns, and exits with status 2. A row whose differences exceed -tol-eps
// or -tol-sample is marked and the exit status is 3. -budget bounds the
// whole run: timed runs that would not fit are left out (the table says how
// many ran), and settings that cannot even be compared are marked skipped.
//
//	go run ./examples/gpucheck -device webgpu
//
// scripts/gpu-check.sh runs it on a machine with an NVIDIA GPU and no Vulkan
// loader installed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/examples/internal/fashion"
	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/onnx"
)

// Exit statuses besides 0 (all compared within tolerance) and 1 (an error).
const (
	exitUnavailable = 2
	exitMismatch    = 3
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gpucheck:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

type config struct {
	model     string
	device    onnx.Device
	sizes     []int
	batches   []int
	steps     int
	runs      int
	threads   int
	budget    time.Duration
	tolEps    float64
	tolSample float64
	t         float64
	jsonOut   string
}

func parse(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("gpucheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &config{device: onnx.Device{Kind: onnx.DeviceWebGPU}}
	fs.StringVar(&c.model, "model", "testdata/models/fashion_unet.onnx", "ONNX eps-prediction model trained at 28x28 (looked up from the working directory and its parents)")
	fs.Var(&c.device, "device", "the device compared with the CPU: cuda, cuda:N, tensorrt, tensorrt:N, webgpu (or cpu, to check the check)")
	sizes := fs.String("sizes", "28,56,112", "comma-separated sizes, multiples of 28")
	batches := fs.String("batches", "1,32", "comma-separated batch sizes")
	fs.IntVar(&c.steps, "steps", 20, "DDIM steps of each sampling run")
	fs.IntVar(&c.runs, "runs", 5, "timed runs per setting and device (the median is reported)")
	fs.IntVar(&c.threads, "threads", 0, "ONNX Runtime intra-op threads of the CPU session (0: one per physical core)")
	fs.DurationVar(&c.budget, "budget", 6*time.Minute, "wall-time budget of the whole check")
	fs.Float64Var(&c.tolEps, "tol-eps", 1e-3, "largest accepted |device - CPU| of a model output, relative to its largest magnitude")
	fs.Float64Var(&c.tolSample, "tol-sample", 2e-2, "largest accepted |device - CPU| of a final sample (samples lie in [-1, 1])")
	fs.Float64Var(&c.t, "t", 800, "timestep of the compared model call")
	fs.StringVar(&c.jsonOut, "json", "", "also write the results to this JSON file")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if c.sizes, err = ints("-sizes", *sizes); err != nil {
		return nil, err
	}
	for _, s := range c.sizes {
		if s%fashion.TrainedSize != 0 {
			return nil, fmt.Errorf("-sizes: %d is not a multiple of %d", s, fashion.TrainedSize)
		}
	}
	if c.batches, err = ints("-batches", *batches); err != nil {
		return nil, err
	}
	if c.steps <= 0 || c.runs < 0 || c.threads < 0 || c.budget <= 0 || !(c.tolEps > 0) || !(c.tolSample > 0) || !(c.t >= 0 && c.t <= 999) {
		return nil, errors.New("-steps, -budget, -tol-eps and -tol-sample must be positive, -runs and -threads not negative, -t in [0, 999]")
	}
	return c, nil
}

func ints(name, s string) ([]int, error) {
	var v []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%s: %q is not a positive integer", name, f)
		}
		v = append(v, n)
	}
	return v, nil
}

// result is one row of the table.
type result struct {
	Size    int    `json:"size"`
	Mode    string `json:"mode"`
	Batch   int    `json:"batch"`
	Skipped string `json:"skipped,omitempty"`
	// Wall times of the timed sampling runs, milliseconds.
	CPUMs    []float64 `json:"cpu_ms"`
	DeviceMs []float64 `json:"device_ms,omitempty"`
	// Largest |device - CPU| of one model output, the largest |output| on
	// the CPU, and the largest |device - CPU| of the final samples (NaN
	// without a device).
	EpsDiff    jsonFloat `json:"eps_max_abs_diff"`
	EpsScale   jsonFloat `json:"eps_max_abs"`
	SampleDiff jsonFloat `json:"sample_max_abs_diff"`
	Mismatch   bool      `json:"mismatch,omitempty"`

	last [2]time.Duration // the latest sampling run's duration on the CPU and the device
}

// jsonFloat is a float64 that JSON encodes as null when it is NaN or
// infinite (a side is missing, or a value was not finite).
type jsonFloat float64

// MarshalJSON implements json.Marshaler.
func (f jsonFloat) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(f))
}

// UnmarshalJSON implements json.Unmarshaler; null reads as NaN.
func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = jsonFloat(math.NaN())
		return nil
	}
	return json.Unmarshal(b, (*float64)(f))
}

// report is what -json writes.
type report struct {
	Model          string    `json:"model"`
	Device         string    `json:"device"`
	Providers      []string  `json:"providers,omitempty"`
	Unavailable    string    `json:"unavailable,omitempty"`
	RuntimeVersion string    `json:"onnxruntime"`
	CPUs           int       `json:"cpus"`
	Steps          int       `json:"steps"`
	Results        []*result `json:"results"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	start := time.Now()
	c, err := parse(args, stderr)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.budget)
	defer cancel()
	path, err := fashion.FindFile(c.model)
	if err != nil {
		return 0, fmt.Errorf("model: %w (pass -model)", err)
	}
	var cpuOpts []onnx.Option
	if c.threads > 0 {
		cpuOpts = append(cpuOpts, onnx.WithThreads(c.threads, 1))
	}
	cpu, err := onnx.Open(path, cpuOpts...)
	if err != nil {
		return 0, err
	}
	defer cpu.Close()
	rep := &report{Model: path, Device: c.device.String(), RuntimeVersion: onnx.RuntimeVersion(), CPUs: runtime.NumCPU(), Steps: c.steps}
	var dev *onnx.Model
	if c.device.Kind == "" || c.device.Kind == onnx.DeviceCPU {
		fmt.Fprintln(stderr, "gpucheck: -device cpu compares the CPU with itself (a check of the check)")
	}
	dev, err = onnx.Open(path, c.device.Options()...)
	if err != nil {
		if !errors.Is(err, onnx.ErrProviderUnavailable) {
			return 0, err
		}
		rep.Unavailable = err.Error()
	} else {
		defer dev.Close()
		rep.Providers = dev.Info().Providers
	}
	fmt.Fprintf(stdout, "gpucheck: %s, ONNX Runtime %s, %d CPUs, %d DDIM steps per run\n", path, rep.RuntimeVersion, rep.CPUs, c.steps)
	if dev == nil {
		fmt.Fprintf(stdout, "\nDEVICE %s UNAVAILABLE: %s\n\nOnly the CPU columns follow.\n", c.device, rep.Unavailable)
	} else {
		fmt.Fprintf(stdout, "device %s: providers %v\n", c.device, rep.Providers)
	}

	// First every setting is compared (which also warms the sessions up for
	// its shapes), then timed runs go round the settings, one per setting
	// and device per round, so that a tight budget thins every row rather
	// than dropping the last ones.
	for _, size := range c.sizes {
		modes := []string{"plain"}
		if size > fashion.TrainedSize {
			modes = append(modes, "guided")
		}
		for _, batch := range c.batches {
			for _, mode := range modes {
				nan := jsonFloat(math.NaN())
				r := &result{Size: size, Mode: mode, Batch: batch, EpsDiff: nan, EpsScale: nan, SampleDiff: nan}
				rep.Results = append(rep.Results, r)
				if ctx.Err() != nil {
					r.Skipped = "budget"
					continue
				}
				if err := compare(ctx, c, r, cpu, dev); err != nil {
					if ctx.Err() == nil {
						return 0, err
					}
					r.Skipped = "budget"
				}
				fmt.Fprintf(stderr, "gpucheck: compared %d %s batch %d, %.0fs so far\n", size, mode, batch, time.Since(start).Seconds())
			}
		}
	}
	deadline := start.Add(c.budget)
	for round := range c.runs {
		for _, r := range rep.Results {
			if r.Skipped != "" {
				continue
			}
			if time.Now().Add(r.last[0] + r.last[1]).After(deadline) {
				continue
			}
			if err := timeRun(ctx, c, r, cpu, dev); err != nil {
				if ctx.Err() == nil {
					return 0, err
				}
				break
			}
		}
		fmt.Fprintf(stderr, "gpucheck: timing round %d done, %.0fs so far\n", round+1, time.Since(start).Seconds())
	}
	fmt.Fprintln(stdout)
	writeTable(stdout, rep, c)
	if c.jsonOut != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return 0, err
		}
		if err := os.WriteFile(c.jsonOut, append(b, '\n'), 0o644); err != nil {
			return 0, err
		}
	}
	switch {
	case dev == nil:
		return exitUnavailable, nil
	case slices.ContainsFunc(rep.Results, func(r *result) bool { return r.Mismatch }):
		return exitMismatch, nil
	}
	return 0, nil
}

// setting returns the sampling setting of r.
func setting(r *result) fashion.Setting {
	s := fashion.Setting{Name: fmt.Sprintf("%d %s", r.Size, r.Mode), Size: r.Size}
	if r.Mode == "guided" {
		ug := fashion.Guided(1)
		s.Guide = &ug
	}
	return s
}

// denoiser returns the model, or the guided denoiser of r's mode.
func denoiser(m *onnx.Model, r *result) (ugo.Denoiser, error) {
	if r.Mode != "guided" {
		return m, nil
	}
	f := r.Size / fashion.TrainedSize
	o := fashion.Guided(1)
	o.Factors = []int{f, f}
	return guidance.Upsample(m, fashion.Schedule(), o)
}

// compare fills r's differences: one call of the model or guided denoiser,
// and one sampling run, on each device. The sampling runs' durations are
// kept to plan the timed runs.
func compare(ctx context.Context, c *config, r *result, cpu, dev *onnx.Model) error {
	seeds := fashion.Seeds(1, r.Batch)
	models := []*onnx.Model{cpu}
	if dev != nil {
		models = append(models, dev)
	}

	x := tensor.New(tensor.WithShape(r.Batch, 1, r.Size, r.Size), tensor.Of(tensor.Float32))
	fashion.SeedNoise(x.Float32s(), seeds)
	ts := make([]float32, r.Batch)
	for i := range ts {
		ts[i] = float32(c.t)
	}
	var eps [][]float32
	for _, m := range models {
		d, err := denoiser(m, r)
		if err != nil {
			return err
		}
		dst := tensor.New(tensor.WithShape(x.Shape()...), tensor.Of(tensor.Float32))
		if err := d.PredictNoise(ctx, dst, x, ts); err != nil {
			return err
		}
		eps = append(eps, dst.Float32s())
	}
	r.EpsScale = jsonFloat(maxAbs(eps[0]))

	var samples [][]float32
	for i, m := range models {
		t0 := time.Now()
		out, err := (&fashion.Sampler{Model: m, Steps: c.steps}).Sample(ctx, setting(r), seeds, 0)
		if err != nil {
			return err
		}
		r.last[i] = time.Since(t0)
		samples = append(samples, out.Float32s())
	}
	if dev != nil {
		r.EpsDiff = jsonFloat(maxAbsDiff(eps[0], eps[1]))
		r.SampleDiff = jsonFloat(maxAbsDiff(samples[0], samples[1]))
		r.Mismatch = !(float64(r.EpsDiff) <= c.tolEps*float64(r.EpsScale)) || !(float64(r.SampleDiff) <= c.tolSample)
	}
	return nil
}

// timeRun times one sampling run of r's setting on the CPU, then one on the
// device.
func timeRun(ctx context.Context, c *config, r *result, cpu, dev *onnx.Model) error {
	seeds := fashion.Seeds(1, r.Batch)
	for i, m := range []*onnx.Model{cpu, dev} {
		if m == nil {
			break
		}
		t0 := time.Now()
		if _, err := (&fashion.Sampler{Model: m, Steps: c.steps}).Sample(ctx, setting(r), seeds, 0); err != nil {
			return err
		}
		r.last[i] = time.Since(t0)
		ms := float64(r.last[i].Microseconds()) / 1000
		if i == 0 {
			r.CPUMs = append(r.CPUMs, ms)
		} else {
			r.DeviceMs = append(r.DeviceMs, ms)
		}
	}
	return nil
}

func maxAbs(a []float32) float64 {
	m := 0.0
	for _, v := range a {
		m = max(m, math.Abs(float64(v)))
	}
	return m
}

// maxAbsDiff returns the largest |a[i] - b[i]|, +Inf when a value is not
// finite on one side only.
func maxAbsDiff(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		m = max(m, d)
	}
	return m
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// writeTable prints the results as one Markdown table.
func writeTable(w io.Writer, rep *report, c *config) {
	dev := rep.Device
	fmt.Fprintf(w, "| size | mode | batch | runs | CPU ms (median) | %s ms (median) | %s speedup | guided/plain CPU | guided/plain %s | max abs diff, model output (max abs output) | max abs diff, final sample | ok |\n", dev, dev, dev)
	fmt.Fprintln(w, "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
	plain := map[[2]int]*result{}
	for _, r := range rep.Results {
		if r.Mode == "plain" {
			plain[[2]int{r.Size, r.Batch}] = r
		}
	}
	for _, r := range rep.Results {
		cpuMed, devMed := median(r.CPUMs), median(r.DeviceMs)
		ratio := func(get func(*result) []float64) string {
			p := plain[[2]int{r.Size, r.Batch}]
			if r.Mode != "guided" || p == nil {
				return "—"
			}
			return num(median(get(r))/median(get(p)), "%.3f")
		}
		ok := "—"
		if r.Skipped != "" {
			ok = "skipped (" + r.Skipped + ")"
		} else if !math.IsNaN(float64(r.EpsDiff)) {
			ok = "yes"
			if r.Mismatch {
				ok = "**NO**"
			}
		}
		runs := strconv.Itoa(len(r.CPUMs))
		if rep.Unavailable == "" {
			runs += "+" + strconv.Itoa(len(r.DeviceMs))
		}
		fmt.Fprintf(w, "| %d | %s | %d | %s | %s | %s | %s | %s | %s | %s (%s) | %s | %s |\n",
			r.Size, r.Mode, r.Batch, runs, num(cpuMed, "%.1f"), num(devMed, "%.1f"), num(cpuMed/devMed, "%.2fx"),
			ratio(func(r *result) []float64 { return r.CPUMs }), ratio(func(r *result) []float64 { return r.DeviceMs }),
			num(float64(r.EpsDiff), "%.2g"), num(float64(r.EpsScale), "%.3g"), num(float64(r.SampleDiff), "%.2g"), ok)
	}
	fmt.Fprintf(w, "\nTolerances: model output %g x its max abs value, final sample %g. Timed runs per device: up to %d, within a budget of %s.\n",
		c.tolEps, c.tolSample, c.runs, c.budget)
}

// num formats v, or a dash when it is NaN because a side is missing.
func num(v float64, format string) string {
	if math.IsNaN(v) {
		return "—"
	}
	if math.IsInf(v, 0) {
		return "inf"
	}
	return fmt.Sprintf(format, v)
}
