// Command bench measures what Upsample Guidance costs on the shipped
// Fashion-MNIST UNet (trained at 28x28) run by ONNX Runtime: for each output
// size it times DDIM sampling without guidance ("plain"), with guidance and
// its two model calls run concurrently ("guided", UpsampleOptions.Concurrent),
// one after the other ("guided_seq", UpsampleOptions.Sequential), and as the
// guidance chooses from the model's ugo.FillsCPU when neither is set
// ("guided_auto", the default: one after the other when the session's
// intra-op threads cover every CPU); at the training size itself (-sizes
// 28) only plain sampling. It prints Markdown tables:
//
//   - the median wall time per image over -runs runs, interleaved in one
//     process (run r visits the settings in an order rotated by r), its range,
//     the ratio to plain sampling at the same size and the bound 1 + 1/k the
//     guidance should stay under (k = factor^2 pooled pixels);
//   - the fraction of the wall time outside model calls (schedule, noise,
//     guidance arithmetic, resampling, tensor plumbing), measured by wrapping
//     the model in a Denoiser that records when at least one call is in
//     flight;
//   - the Go heap allocations per sampling step in steady state (from runs of
//     -alloc-steps and twice as many steps; with ONNX Runtime, what remains
//     comes from the onnxruntime_go binding);
//   - the mean duration of the high- and low-resolution model calls.
//
// Sampling is exactly the demo's (examples/fashion): DDIM with diffusers'
// defaults (schedule.DefaultConfig, eta 0) and UseClippedModelOutput on the
// model's linear schedule, image i of a batch starting from
// noise.NewTorchCPU(seed+i), guidance with fashion.Guided(1)
// (DefaultUpsampleOptions, x0 clamped block-wise to [-1, 1]).
//
// With -shapes on, the model runs in sessions specialised to each call
// shape (onnx.WithShapeSessions: ONNX Runtime knows every shape and folds
// the graph's shape arithmetic); with -shapes both every mode runs once
// with the dynamic session and once with specialised sessions (the mode
// names get a _shapes suffix), interleaved in the same runs, so the tables
// compare them side by side.
//
// With -dump DIR it also writes the initial noise (noise_SIZE.npy), the final
// samples of every setting (go_SIZE_MODE.npy, N x 1 x SIZE x SIZE float32) and
// the settings and timings (bench.json), which tools/reference/reference.py
// reads to run the same sampler in PyTorch and compare. Typical use, from the
// repository root:
//
//	go run ./examples/bench -threads 2 -n 4 -steps 50 -runs 5 -dump out/bench
//	/usr/bin/python3 tools/reference/reference.py --go out/bench
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
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/examples/internal/cli"
	"github.com/ugo-diffusion/ugo/examples/internal/fashion"
	"github.com/ugo-diffusion/ugo/onnx"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// config holds the command-line settings.
type config struct {
	model      string
	sizes      []int
	n          int
	steps      int
	runs       int
	seed       uint64
	threads    int
	inter      int
	allocSteps int
	dump       string
	cpuProfile string
	device     onnx.Device
	shapes     string // "off", "on" or "both"
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.model, "model", "testdata/models/fashion_unet.onnx", "ONNX eps-prediction model trained at 28x28 (looked up from the working directory and its parents)")
	sizes := fs.String("sizes", "56,112", "comma-separated output sizes, multiples of 28 (28 itself: plain sampling only)")
	fs.IntVar(&c.n, "n", 4, "images per batch (one Sample call)")
	fs.IntVar(&c.steps, "steps", 50, "DDIM steps")
	fs.IntVar(&c.runs, "runs", 5, "timed runs per setting (the median is reported)")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the first image; image i uses seed+i")
	fs.IntVar(&c.threads, "threads", 0, "ONNX Runtime intra-op threads (0: runtime default, one per physical core)")
	fs.IntVar(&c.inter, "inter", 0, "ONNX Runtime inter-op threads (0: runtime default; > 1 enables parallel execution mode)")
	fs.IntVar(&c.allocSteps, "alloc-steps", 5, "steps of the allocation-counting runs (0 skips them)")
	fs.StringVar(&c.dump, "dump", "", "folder for noise, final samples and bench.json (for tools/reference)")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the timed runs to this file")
	fs.Var(&c.device, "device", "where the model runs: cpu, cuda, cuda:N, tensorrt, tensorrt:N or webgpu")
	fs.StringVar(&c.shapes, "shapes", "off", "shape-specialised sessions (onnx.WithShapeSessions): off, on, or both (every mode with and without)")
	if err := cli.Parse(fs, args); err != nil {
		return nil, err
	}
	if c.shapes != "off" && c.shapes != "on" && c.shapes != "both" {
		return nil, fmt.Errorf("-shapes %q: want off, on or both", c.shapes)
	}
	if c.n <= 0 || c.steps <= 0 || c.runs <= 0 || c.allocSteps < 0 || c.threads < 0 || c.inter < 0 {
		return nil, errors.New("-n, -steps and -runs must be positive; -alloc-steps, -threads and -inter not negative")
	}
	for _, f := range strings.Split(*sizes, ",") {
		s, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("-sizes: %w", err)
		}
		if s < fashion.TrainedSize || s%fashion.TrainedSize != 0 {
			return nil, fmt.Errorf("-sizes: %d is not a multiple of %d", s, fashion.TrainedSize)
		}
		if s > 1<<14 {
			return nil, fmt.Errorf("-sizes: %d is larger than %d", s, 1<<14)
		}
		c.sizes = append(c.sizes, s)
	}
	if err := cli.First(cli.Threads("threads", c.threads), cli.Threads("inter", c.inter), cli.Between("steps", c.steps, 1, 100000),
		cli.Between("runs", c.runs, 1, 10000), cli.Between("alloc-steps", c.allocSteps, 0, 100000),
		cli.Memory(fmt.Sprintf("-n %d images of %dx%d", c.n, slices.Max(c.sizes), slices.Max(c.sizes)), 12, c.n, 1, slices.Max(c.sizes), slices.Max(c.sizes))); err != nil {
		return nil, err
	}
	return c, nil
}

// mode is one way of sampling at a size.
type mode struct {
	name                   string
	guided                 bool
	sequential, concurrent bool // neither: the guidance asks the model (ugo.FillsCPU)
	shapes                 bool // run in shape-specialised sessions
}

var modes = []mode{{"plain", false, false, false, false}, {"guided", true, false, true, false}, {"guided_seq", true, true, false, false}, {"guided_auto", true, false, false, false}}

// shapesSuffix ends the name of a mode run in shape-specialised sessions.
const shapesSuffix = "_shapes"

// modesFor returns the modes of the -shapes setting: the dynamic session's,
// the specialised sessions', or both, each dynamic mode followed by its
// specialised twin.
func modesFor(shapes string) []mode {
	var out []mode
	for _, m := range modes {
		if shapes != "on" {
			out = append(out, m)
		}
		if shapes != "off" {
			m.name += shapesSuffix
			m.shapes = true
			out = append(out, m)
		}
	}
	return out
}

// base returns the name of m without the shapes suffix.
func (m mode) base() string { return strings.TrimSuffix(m.name, shapesSuffix) }

// result collects the measurements of one size and mode.
type result struct {
	size, factor int
	mode         mode

	perImage  []time.Duration // wall time per image, one per timed run
	outside   []float64       // fraction of the wall time outside model calls, per run
	highCall  []time.Duration // mean high-resolution call, per run
	lowCall   []time.Duration // mean low-resolution call, per run
	allocs    float64         // Go heap allocations per step; NaN when not measured
	final     []float32       // the final samples of the first timed run
	runDiff   float64         // largest difference of a later run's samples from the first's
	highCalls int             // model calls per run at each resolution
	lowCalls  int
}

func (r *result) name() string { return fmt.Sprintf("%d_%s", r.size, r.mode.name) }

func (r *result) setting() fashion.Setting {
	s := fashion.Setting{Name: r.name(), Size: r.size}
	if r.mode.guided {
		o := fashion.Guided(1)
		o.Sequential, o.Concurrent = r.mode.sequential, r.mode.concurrent
		s.Guide = &o
	}
	return s
}

func run(out io.Writer) error {
	c, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		return err
	}
	path, err := fashion.FindFile(c.model)
	if err != nil {
		return fmt.Errorf("model: %w (pass -model)", err)
	}
	var opts []onnx.Option
	if c.threads > 0 || c.inter > 0 {
		opts = append(opts, onnx.WithThreads(c.threads, c.inter))
	}
	opts = append(opts, c.device.Options()...)
	// timedModels holds the model with its dynamic session alone (false)
	// and with shape-specialised sessions (true), as -shapes asks.
	timedModels := map[bool]*timedModel{}
	var shaped *onnx.Model
	for _, spec := range []bool{false, true} {
		if (spec && c.shapes == "off") || (!spec && c.shapes == "on") {
			continue
		}
		o := opts
		if spec {
			// Each size calls the model at two shapes at most (full and
			// low resolution).
			o = append(slices.Clip(opts), onnx.WithShapeSessions(min(2*len(c.sizes), onnx.MaxShapeSessions)))
		}
		m, err := onnx.Open(path, o...)
		if err != nil {
			return err
		}
		defer m.Close()
		if spec {
			shaped = m
		}
		timedModels[spec] = newTimedModel(m)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	seeds := fashion.Seeds(c.seed, c.n)
	var results []*result
	for _, size := range c.sizes {
		for _, m := range modesFor(c.shapes) {
			if m.guided && size == fashion.TrainedSize {
				continue // nothing to guide at the training size
			}
			results = append(results, &result{size: size, factor: size / fashion.TrainedSize, mode: m, allocs: math.NaN()})
		}
	}
	loadStart := loadAverage()

	// Warm up every shape (ONNX Runtime sets up a shape on its first run).
	for _, r := range results {
		warm := &fashion.Sampler{Model: timedModels[r.mode.shapes], Steps: min(2, c.steps)}
		if _, err := warm.Sample(ctx, r.setting(), seeds, 0); err != nil {
			return err
		}
	}

	stopProfile, err := cli.StartCPUProfile(c.cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	start := time.Now()
	for run := range c.runs {
		for j := range results {
			r := results[(j+run)%len(results)]
			fmt.Fprintf(os.Stderr, "\rrun %d/%d %-16s", run+1, c.runs, r.name())
			timed := timedModels[r.mode.shapes]
			s := &fashion.Sampler{Model: timed, Steps: c.steps}
			runtime.GC()
			timed.Reset()
			t0 := time.Now()
			x, err := s.Sample(ctx, r.setting(), seeds, 0)
			wall := time.Since(t0)
			if err != nil {
				return err
			}
			busy := timed.Busy()
			r.perImage = append(r.perImage, wall/time.Duration(c.n))
			r.outside = append(r.outside, float64(wall-busy)/float64(wall))
			lowSize := r.size / r.factor
			var hc, lc int
			var ht, lt time.Duration
			hc, ht = timed.Calls(c.n, 1, r.size, r.size)
			lc, lt = timed.Calls(c.n, 1, lowSize, lowSize)
			r.highCall = append(r.highCall, ht)
			r.highCalls = hc
			if r.mode.guided {
				r.lowCall = append(r.lowCall, lt)
				r.lowCalls = lc
			}
			data := x.Float32s()
			if r.final == nil {
				r.final = append([]float32(nil), data...)
			} else {
				r.runDiff = max(r.runDiff, maxAbsDiff(r.final, data))
			}
		}
	}
	elapsed := time.Since(start)
	if err := stopProfile(); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr)

	if c.allocSteps > 0 {
		for _, r := range results {
			fmt.Fprintf(os.Stderr, "\rallocations %-16s", r.name())
			if r.allocs, err = allocsPerStep(ctx, timedModels[r.mode.shapes], r.setting(), seeds, c.allocSteps); err != nil {
				return err
			}
		}
		fmt.Fprintln(os.Stderr)
	}

	report(out, c, path, results, elapsed, loadStart, loadAverage())
	if shaped != nil {
		fmt.Fprintln(out, "\nShape-specialised sessions (onnx.Model.ShapeSessions):")
		for _, ss := range shaped.ShapeSessions() {
			status := "in use"
			if ss.Err != nil {
				status = "failed: " + ss.Err.Error()
			}
			fmt.Fprintf(out, "- %v: %s\n", ss.Inputs, status)
		}
	}
	if c.dump != "" {
		if err := dump(c, path, results); err != nil {
			return err
		}
		fmt.Fprintf(out, "\nWrote initial noise, final samples and bench.json to %s.\n", c.dump)
	}
	return nil
}

// allocsPerStep returns the Go heap allocations per step of sampling s in
// steady state: the difference between a run of 2*steps steps and one of
// steps steps, divided by steps, so that what a run allocates once cancels.
func allocsPerStep(ctx context.Context, model ugo.Denoiser, s fashion.Setting, seeds []uint64, steps int) (float64, error) {
	count := func(n int) (uint64, error) {
		smp := &fashion.Sampler{Model: model, Steps: n}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := smp.Sample(ctx, s, seeds, 0)
		runtime.ReadMemStats(&after)
		return after.Mallocs - before.Mallocs, err
	}
	short, err := count(steps)
	if err != nil {
		return 0, err
	}
	long, err := count(2 * steps)
	if err != nil {
		return 0, err
	}
	return (float64(long) - float64(short)) / float64(steps), nil
}

func maxAbsDiff(a, b []float32) float64 {
	var m float64
	for i := range a {
		m = max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

// median returns the median of v (the mean of the middle two for an even
// length); v is not modified.
func median[T int64 | float64 | time.Duration](v []T) T {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }

// report prints the Markdown tables.
func report(w io.Writer, c *config, path string, results []*result, elapsed time.Duration, loadStart, loadEnd string) {
	threads := "runtime default"
	if c.threads > 0 {
		threads = strconv.Itoa(c.threads)
	}
	fmt.Fprintf(w, "Model %s; %d images per batch, %d DDIM steps, median of %d interleaved runs; ONNX Runtime intra-op threads: %s, inter-op: %d; shape-specialised sessions: %s; GOMAXPROCS %d, %s (%d CPUs); load average %s at start, %s at end; %.0f s.\n\n",
		filepath.Base(path), c.n, c.steps, c.runs, threads, c.inter, c.shapes, runtime.GOMAXPROCS(0), cpuModel(), runtime.NumCPU(), loadStart, loadEnd, elapsed.Seconds())

	fmt.Fprintln(w, "| size | scale (k) | mode | ms per image | range | vs plain | bound 1+1/k | outside model calls | Go allocs/step |")
	fmt.Fprintln(w, "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	type plainKey struct {
		size   int
		shapes bool
	}
	plain := map[plainKey]time.Duration{}
	for _, r := range results {
		if !r.mode.guided {
			plain[plainKey{r.size, r.mode.shapes}] = median(r.perImage)
		}
	}
	for _, r := range results {
		k := r.factor * r.factor
		med := median(r.perImage)
		ratio, bound := "1", "—"
		if r.mode.guided {
			ratio = fmt.Sprintf("%.3f", float64(med)/float64(plain[plainKey{r.size, r.mode.shapes}]))
			bound = fmt.Sprintf("%.3f", 1+1/float64(k))
		}
		allocs := "—"
		if !math.IsNaN(r.allocs) {
			allocs = fmt.Sprintf("%.1f", r.allocs)
		}
		fmt.Fprintf(w, "| %d | %dx (%d) | %s | %s | %s–%s | %s | %s | %.2f%% | %s |\n",
			r.size, r.factor, k, r.mode.name, ms(med), ms(slices.Min(r.perImage)), ms(slices.Max(r.perImage)),
			ratio, bound, 100*median(r.outside), allocs)
	}

	fmt.Fprintln(w, "\nModel calls (mean duration per call, median over runs; calls per run):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| size | mode | high-res call ms | low-res call ms | low/high | calls per run |")
	fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: | ---: |")
	for _, r := range results {
		hi := median(r.highCall)
		lo, ratio := "—", "—"
		calls := strconv.Itoa(r.highCalls)
		if r.mode.guided {
			l := median(r.lowCall)
			lo, ratio = ms(l), fmt.Sprintf("%.3f", float64(l)/float64(hi))
			calls += " + " + strconv.Itoa(r.lowCalls)
		}
		fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s |\n", r.size, r.mode.name, ms(hi), lo, ratio, calls)
	}

	if c.shapes == "both" {
		fmt.Fprintln(w, "\nShape-specialised sessions against the dynamic session (medians above):")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| size | mode | dynamic ms per image | shapes ms per image | shapes / dynamic | vs plain, dynamic | vs plain, shapes | low/high call, dynamic | low/high call, shapes |")
		fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
		for _, r := range results {
			if r.mode.shapes {
				continue
			}
			o := twin(results, r)
			if o == nil {
				continue
			}
			d, sh := median(r.perImage), median(o.perImage)
			vs := func(x *result, v time.Duration) string {
				if !x.mode.guided {
					return "1"
				}
				return fmt.Sprintf("%.3f", float64(v)/float64(plain[plainKey{x.size, x.mode.shapes}]))
			}
			lh := func(x *result) string {
				if !x.mode.guided {
					return "—"
				}
				return fmt.Sprintf("%.3f", float64(median(x.lowCall))/float64(median(x.highCall)))
			}
			fmt.Fprintf(w, "| %d | %s | %s | %s | %.3f | %s | %s | %s | %s |\n", r.size, r.mode.name, ms(d), ms(sh),
				float64(sh)/float64(d), vs(r, d), vs(o, sh), lh(r), lh(o))
		}
	}

	fmt.Fprintln(w, "\nChecks:")
	for _, r := range results {
		fmt.Fprintf(w, "- %s: runs agree to %.2g", r.name(), r.runDiff)
		if r.mode.sequential {
			for _, o := range results {
				if o.size == r.size && o.mode.guided && !o.mode.sequential && o.mode.shapes == r.mode.shapes {
					fmt.Fprintf(w, "; vs %s: max abs diff %.2g", o.mode.name, maxAbsDiff(r.final, o.final))
				}
			}
		}
		if o := twin(results, r); r.mode.shapes && o != nil {
			fmt.Fprintf(w, "; vs %s (dynamic session): max abs diff %.2g", o.mode.name, maxAbsDiff(r.final, o.final))
		}
		fmt.Fprintln(w)
	}
}

// twin returns the result of r's mode at r's size with the other kind of
// session (dynamic or shape-specialised), or nil.
func twin(results []*result, r *result) *result {
	for _, o := range results {
		if o.size == r.size && o.mode.base() == r.mode.base() && o.mode.shapes != r.mode.shapes {
			return o
		}
	}
	return nil
}

// benchFile is the layout of bench.json, read by tools/reference.
type benchFile struct {
	Model        string         `json:"model"`
	N            int            `json:"n"`
	Steps        int            `json:"steps"`
	Seed         uint64         `json:"seed"`
	Runs         int            `json:"runs"`
	Threads      int            `json:"threads"`
	Inter        int            `json:"inter"`
	Theta        float64        `json:"theta"`
	Eta          float64        `json:"eta"`
	TimeMatching string         `json:"time_matching"`
	Noise        map[int]string `json:"noise"`
	Results      []benchResult  `json:"results"`
}

type benchResult struct {
	Size       int     `json:"size"`
	Factor     int     `json:"factor"`
	Mode       string  `json:"mode"`
	MsPerImage float64 `json:"ms_per_image"`
	Outside    float64 `json:"outside_fraction"`
	File       string  `json:"file"`
}

// dump writes the initial noise, the final samples and bench.json.
func dump(c *config, path string, results []*result) error {
	if err := os.MkdirAll(c.dump, 0o755); err != nil {
		return err
	}
	ug := fashion.Guided(1)
	bf := benchFile{
		Model: path, N: c.n, Steps: c.steps, Seed: c.seed, Runs: c.runs, Threads: c.threads, Inter: c.inter,
		Theta: ug.Theta, Eta: ug.Eta, TimeMatching: strings.ToLower(ug.TimeMatching.String()),
		Noise: map[int]string{},
	}
	for _, size := range c.sizes {
		x := make([]float32, c.n*size*size)
		fashion.SeedNoise(x, fashion.Seeds(c.seed, c.n))
		name := fmt.Sprintf("noise_%d.npy", size)
		if err := saveNPY(filepath.Join(c.dump, name), []int{c.n, 1, size, size}, x); err != nil {
			return err
		}
		bf.Noise[size] = name
	}
	for _, r := range results {
		name := "go_" + r.name() + ".npy"
		if err := saveNPY(filepath.Join(c.dump, name), []int{c.n, 1, r.size, r.size}, r.final); err != nil {
			return err
		}
		bf.Results = append(bf.Results, benchResult{
			Size: r.size, Factor: r.factor, Mode: r.mode.name,
			MsPerImage: float64(median(r.perImage)) / float64(time.Millisecond),
			Outside:    median(r.outside),
			File:       name,
		})
	}
	data, err := json.MarshalIndent(bf, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(c.dump, "bench.json"), append(data, '\n'), 0o644)
}

// cpuModel returns the CPU's model name from /proc/cpuinfo, or GOARCH.
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				return strings.TrimSpace(strings.TrimLeft(name, " \t:"))
			}
		}
	}
	return runtime.GOARCH
}

// loadAverage returns the 1-minute load average from /proc/loadavg, or "?".
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(data)); len(f) > 0 {
		return f[0]
	}
	return "?"
}
