// Command ortprof profiles the shipped ONNX models in ONNX Runtime: it runs
// each model a number of times in a session opened with onnx.WithProfiling,
// reads the runtime's trace back (onnx.ReadProfile) and prints, per model
// and size, Markdown tables of
//
//   - the mean time of a Run call, the mean of the operator (node) times
//     inside it, and the session overhead: the share of a Run call outside
//     every operator (the runtime's scheduling, allocation and input and
//     output binding);
//   - the operator types by share of the node time, with calls per Run;
//   - the individual nodes that take the most time.
//
// Shares and operator counts describe the graph as the runtime runs it and
// hardly depend on the machine's load; absolute times do. The cases:
//
//   - fashion: the Fashion-MNIST eps-UNet (testdata/models/fashion_unet.onnx)
//     at each -sizes side (28, 56, 112 by default), batch -n;
//   - ldm: the latent text-to-image model (testdata/models/fashion_ldm_eps):
//     its UNet at the latents of each -pixels size, batch 2 (the
//     classifier-free-guidance batch); its text encoder on one 77-token
//     prompt; its VAE decoder at each -pixels size.
//
// Session settings come from flags: -threads, -opt (graph optimisation
// level), -spin (intra-op spinning), -shapes (the calls run in a session
// specialised to their input shapes, onnx.WithShapeSessions, so the node
// counts show what ONNX Runtime folds when it knows every shape). Typical
// use, from the repository root:
//
//	go run ./examples/ortprof -threads 2 -runs 20
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo/examples/internal/cli"
	"github.com/ugo-diffusion/ugo/examples/internal/fashion"
	"github.com/ugo-diffusion/ugo/onnx"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ortprof:", err)
		os.Exit(1)
	}
}

// config holds the command-line settings.
type config struct {
	suites  []string
	fashion string
	ldm     string
	sizes   []int
	pixels  []int
	n       int
	runs    int
	warmup  int
	threads int
	top     int
	opt     onnx.GraphOptimization
	spin    bool
	shapes  bool
	dir     string
}

var levels = map[string]onnx.GraphOptimization{
	"all": onnx.OptimizeAll, "extended": onnx.OptimizeExtended, "basic": onnx.OptimizeBasic, "none": onnx.OptimizeNone,
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("ortprof", flag.ContinueOnError)
	fs.SetOutput(stderr)
	suites := fs.String("cases", "fashion,ldm", "comma-separated cases: fashion, ldm")
	fs.StringVar(&c.fashion, "fashion", "testdata/models/fashion_unet.onnx", "the Fashion-MNIST UNet (looked up from the working directory and its parents)")
	fs.StringVar(&c.ldm, "ldm", "testdata/models/fashion_ldm_eps", "the latent model's folder (diffusers' ONNX layout)")
	sizes := fs.String("sizes", "28,56,112", "comma-separated sides of the Fashion UNet's input, multiples of 4")
	pixels := fs.String("pixels", "32,64,128", "comma-separated image sides of the latent model, multiples of 16")
	fs.IntVar(&c.n, "n", 1, "batch of the Fashion UNet")
	fs.IntVar(&c.runs, "runs", 20, "profiled Run calls per case after the warm-up")
	fs.IntVar(&c.warmup, "warmup", 3, "Run calls per case left out of the summary")
	fs.IntVar(&c.threads, "threads", 2, "ONNX Runtime intra-op threads (0: the runtime's default)")
	fs.IntVar(&c.top, "top", 8, "nodes listed per case")
	opt := fs.String("opt", "all", "graph optimisation level: all, extended, basic or none")
	fs.BoolVar(&c.spin, "spin", true, "let intra-op threads spin between operators")
	fs.BoolVar(&c.shapes, "shapes", false, "run each case in a shape-specialised session (onnx.WithShapeSessions)")
	fs.StringVar(&c.dir, "dir", "", "folder for the runtime's trace files (default: a temporary folder, removed at the end)")
	if err := cli.Parse(fs, args); err != nil {
		return nil, err
	}
	for _, s := range cli.Split(*suites) {
		if s != "fashion" && s != "ldm" {
			return nil, fmt.Errorf("-cases: unknown case %q (want fashion or ldm)", s)
		}
		c.suites = append(c.suites, s)
	}
	if len(c.suites) == 0 {
		return nil, errors.New("-cases: no case")
	}
	var ok bool
	if c.opt, ok = levels[*opt]; !ok {
		return nil, fmt.Errorf("-opt %q: want all, extended, basic or none", *opt)
	}
	var err error
	if c.sizes, err = sides("sizes", *sizes, 4, 4, 512); err != nil {
		return nil, err
	}
	if c.pixels, err = sides("pixels", *pixels, 16, 16, 1024); err != nil {
		return nil, err
	}
	if err := cli.First(cli.Between("n", c.n, 1, 64), cli.Between("runs", c.runs, 1, 10000), cli.Between("warmup", c.warmup, 0, 1000),
		cli.Threads("threads", c.threads), cli.Between("top", c.top, 0, 1000)); err != nil {
		return nil, err
	}
	return c, nil
}

// sides parses a comma-separated list of sizes, each a multiple of mult in
// [lo, hi].
func sides(name, list string, mult, lo, hi int) ([]int, error) {
	var out []int
	for _, f := range cli.Split(list) {
		var s int
		if _, err := fmt.Sscan(f, &s); err != nil {
			return nil, fmt.Errorf("-%s: %q is not a number", name, f)
		}
		if s < lo || s > hi || s%mult != 0 {
			return nil, fmt.Errorf("-%s: %d is not a multiple of %d in [%d, %d]", name, s, mult, lo, hi)
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-%s: no size", name)
	}
	return out, nil
}

// profileCase is one profiled session: how to open it and run it once.
type profileCase struct {
	name string
	open func(opts []onnx.Option) (call func(context.Context) error, closeFn func() error, err error)
}

func run(args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	dir := c.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "ortprof"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var cases []profileCase
	for _, s := range c.suites {
		var more []profileCase
		switch s {
		case "fashion":
			more, err = fashionCases(c)
		case "ldm":
			more, err = ldmCases(c)
		}
		if err != nil {
			return err
		}
		cases = append(cases, more...)
	}
	fmt.Fprintf(stdout, "# ONNX Runtime profiles\n\n%d profiled Run calls per case after %d warm-up calls; %d intra-op threads, graph optimisation %s, spinning %v, shape-specialised sessions %v.\n\n",
		c.runs, c.warmup, c.threads, c.opt, c.spin, c.shapes)
	var rows []summaryRow
	for i, pc := range cases {
		prefix := filepath.Join(dir, fmt.Sprintf("case%02d", i))
		s, err := profile(c, pc, prefix)
		if err != nil {
			return fmt.Errorf("%s: %w", pc.name, err)
		}
		rows = append(rows, summaryRow{pc.name, s})
		printCase(stdout, pc.name, s, c.top)
	}
	printSummary(stdout, rows)
	return nil
}

// profile opens pc with profiling, runs it warmup+runs times and summarises
// the trace.
func profile(c *config, pc profileCase, prefix string) (onnx.ProfileSummary, error) {
	opts := []onnx.Option{onnx.WithThreads(c.threads, 1), onnx.WithProfiling(prefix), onnx.WithGraphOptimization(c.opt), onnx.WithSpinning(c.spin)}
	if c.shapes {
		opts = append(opts, onnx.WithShapeSessions(1))
	}
	call, closeFn, err := pc.open(opts)
	if err != nil {
		return onnx.ProfileSummary{}, err
	}
	ctx := context.Background()
	for range c.warmup + c.runs {
		if err := call(ctx); err != nil {
			closeFn()
			return onnx.ProfileSummary{}, err
		}
	}
	if err := closeFn(); err != nil {
		return onnx.ProfileSummary{}, err
	}
	files, err := onnx.ProfileFiles(prefix)
	if err != nil {
		return onnx.ProfileSummary{}, err
	}
	// With -shapes, the dynamic session writes a trace without runs and
	// the specialised session (prefix_shape1_...) one with every run.
	var p *onnx.Profile
	for _, f := range files {
		fp, err := onnx.ReadProfileFile(f)
		if err != nil {
			return onnx.ProfileSummary{}, err
		}
		if len(fp.Runs) == 0 && c.shapes {
			continue
		}
		if p != nil {
			return onnx.ProfileSummary{}, fmt.Errorf("%d profile files with runs under %s, want 1", len(files), prefix)
		}
		p = fp
	}
	if p == nil {
		return onnx.ProfileSummary{}, fmt.Errorf("no profile with runs under %s", prefix)
	}
	if len(p.Runs) != c.warmup+c.runs {
		return onnx.ProfileSummary{}, fmt.Errorf("%d runs in the profile, want %d", len(p.Runs), c.warmup+c.runs)
	}
	return p.Summary(c.warmup), nil
}

// filled returns a float32 tensor of the shape with a smooth deterministic
// pattern in [-1, 1].
func filled(phase float64, shape ...int) *tensor.Dense {
	n := 1
	for _, d := range shape {
		n *= d
	}
	data := make([]float32, n)
	for i := range data {
		data[i] = float32(math.Sin(0.37*float64(i) + phase))
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
}

// denoiserCase profiles a denoiser model opened with onnx.Open at the
// sample shape, with extra inputs bound (name, tensor pairs).
func denoiserCase(name, path string, shape []int, t float32, extra map[string]*tensor.Dense) profileCase {
	return profileCase{name: name, open: func(opts []onnx.Option) (func(context.Context) error, func() error, error) {
		m, err := onnx.Open(path, opts...)
		if err != nil {
			return nil, nil, err
		}
		var d interface {
			PredictNoise(ctx context.Context, dst, x *tensor.Dense, t []float32) error
		} = m
		for k, v := range extra {
			b, err := m.With(k, v)
			if err != nil {
				m.Close()
				return nil, nil, err
			}
			d = b
		}
		x, dst := filled(0, shape...), filled(0, shape...)
		ts := []float32{t}
		return func(ctx context.Context) error { return d.PredictNoise(ctx, dst, x, ts) }, m.Close, nil
	}}
}

// graphCase profiles a graph opened with onnx.OpenGraph.
func graphCase(name, path string, inputs, outputs map[string]*tensor.Dense) profileCase {
	return profileCase{name: name, open: func(opts []onnx.Option) (func(context.Context) error, func() error, error) {
		var outNames []string
		for k := range outputs {
			outNames = append(outNames, k)
		}
		g, err := onnx.OpenGraph(path, append(opts, onnx.WithOutputs(outNames...))...)
		if err != nil {
			return nil, nil, err
		}
		return func(ctx context.Context) error { return g.Run(ctx, inputs, outputs) }, g.Close, nil
	}}
}

func fashionCases(c *config) ([]profileCase, error) {
	path, err := fashion.FindFile(c.fashion)
	if err != nil {
		return nil, err
	}
	var out []profileCase
	for _, s := range c.sizes {
		out = append(out, denoiserCase(fmt.Sprintf("fashion UNet %dx1x%dx%d", c.n, s, s), path, []int{c.n, 1, s, s}, 500, nil))
	}
	return out, nil
}

// ldm model dimensions (testdata/models/fashion_ldm_eps): latent channels,
// VAE scale, text sequence length and hidden size.
const (
	ldmLatentC = 4
	ldmScale   = 4
	ldmSeq     = 77
	ldmHidden  = 64
)

func ldmCases(c *config) ([]profileCase, error) {
	unet, err := fashion.FindFile(filepath.Join(c.ldm, "unet", "model.onnx"))
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(filepath.Dir(unet))
	ehs := filled(1, 2, ldmSeq, ldmHidden)
	var out []profileCase
	for _, px := range c.pixels {
		l := px / ldmScale
		out = append(out, denoiserCase(fmt.Sprintf("ldm UNet 2x%dx%dx%d (%d px)", ldmLatentC, l, l, px), unet,
			[]int{2, ldmLatentC, l, l}, 500, map[string]*tensor.Dense{"encoder_hidden_states": ehs}))
	}
	ids := make([]int64, ldmSeq)
	ids[0] = 49406
	for i := 1; i < ldmSeq; i++ {
		ids[i] = 49407
	}
	ids[1], ids[2], ids[3] = 320, 1125, 539 // "a photo of"
	out = append(out, graphCase("ldm text encoder 1x77", filepath.Join(dir, "text_encoder", "model.onnx"),
		map[string]*tensor.Dense{"input_ids": tensor.New(tensor.WithShape(1, ldmSeq), tensor.WithBacking(ids))},
		map[string]*tensor.Dense{"last_hidden_state": tensor.New(tensor.WithShape(1, ldmSeq, ldmHidden), tensor.Of(tensor.Float32))}))
	for _, px := range c.pixels {
		l := px / ldmScale
		out = append(out, graphCase(fmt.Sprintf("ldm VAE decoder 1x%dx%dx%d (%d px)", ldmLatentC, l, l, px), filepath.Join(dir, "vae_decoder", "model.onnx"),
			map[string]*tensor.Dense{"latent_sample": filled(2, 1, ldmLatentC, l, l)},
			map[string]*tensor.Dense{"sample": tensor.New(tensor.WithShape(1, 3, px, px), tensor.Of(tensor.Float32))}))
	}
	return out, nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond)) }

func pct(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }

func printCase(w io.Writer, name string, s onnx.ProfileSummary, top int) {
	fmt.Fprintf(w, "## %s\n\n", name)
	fmt.Fprintf(w, "Run call %s ms, operators %s ms, session overhead %s of a call (%d calls).\n\n", ms(s.Run), ms(s.Nodes), pct(s.Overhead), s.Runs)
	fmt.Fprintln(w, "| operator | calls / run | ms / run | share of node time |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: |")
	for _, o := range s.Ops {
		fmt.Fprintf(w, "| %s | %.0f | %s | %s |\n", o.Op, o.Calls, ms(o.Time), pct(o.Share))
	}
	if top > 0 {
		fmt.Fprintln(w, "\n| node (operator) | ms / run | share |")
		fmt.Fprintln(w, "| --- | ---: | ---: |")
		for _, o := range s.Top[:min(top, len(s.Top))] {
			fmt.Fprintf(w, "| %s | %s | %s |\n", strings.ReplaceAll(o.Op, "|", `\|`), ms(o.Time), pct(o.Share))
		}
	}
	fmt.Fprintln(w)
}

type summaryRow struct {
	name string
	s    onnx.ProfileSummary
}

func printSummary(w io.Writer, rows []summaryRow) {
	fmt.Fprintln(w, "## Summary")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| case | run ms | session overhead | nodes / run | top operators (share of node time) |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | --- |")
	for _, r := range rows {
		var nodes float64
		var tops []string
		for i, o := range r.s.Ops {
			nodes += o.Calls
			if i < 4 {
				tops = append(tops, fmt.Sprintf("%s %s", o.Op, pct(o.Share)))
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %.0f | %s |\n", r.name, ms(r.s.Run), pct(r.s.Overhead), nodes, strings.Join(tops, ", "))
	}
}
