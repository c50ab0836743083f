// Command latentbudget breaks one text-to-image run of the latent pipeline
// (package pipeline, on testdata/models/fashion_ldm_eps by default) into
// where its time goes, at the training size and at 2x and 4x with Upsample
// Guidance (the pipeline's defaults: theta 1.2 on the noisiest 60% of the
// steps, classifier-free guidance at 7.5 in one batched UNet call). A run is
// pipeline.Model.Generate, the image of its result and its PNG encoding.
//
// The model rows are ONNX Runtime's Run calls alone, as
// onnx.WithRunObserver reports them (binding inputs and copying outputs
// are Go, outside them):
//
//   - text encoder, UNet at full and at low resolution, VAE decoder.
//
// Everything else is the Go side, the time in which no Run call was in
// flight:
//
//   - tokenizer: CLIP BPE of the prompt and the negative prompt, timed on
//     its own just before the run;
//   - guidance, CFG and sampler: the denoise stage less the UNet calls
//     (pooling and the guidance term, the classifier-free-guidance batch
//     and combination, the sampler's update, progress reports);
//   - PNG: encoding the image (picture.EncodePNG), written to memory;
//   - rest of the run: resolving the request, the tensors around the text
//     encoder and the VAE decoder, drawing the initial latents, the image.
//
// Each run is timed whole; the times are medians over -runs runs, visited
// interleaved across sizes, and each share is the median over the runs of
// the part's share of its own run (so the columns need not add up
// exactly). On a machine that other work shares, the shares mean more than
// the milliseconds.
//
// -shapes on loads the pipeline with shape-specialised sessions for every
// model (onnx.WithShapeSessions through pipeline.WithONNXOptions); -shapes
// both loads it twice, with and without, and interleaves the runs of both,
// the columns of the specialised one marked "shapes".
//
// Typical use, from the repository root:
//
//	go run ./examples/latentbudget -threads 2 -runs 5
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ugo-diffusion/ugo/examples/internal/cli"
	"github.com/ugo-diffusion/ugo/examples/internal/fashion"
	"github.com/ugo-diffusion/ugo/onnx"
	"github.com/ugo-diffusion/ugo/picture"
	"github.com/ugo-diffusion/ugo/pipeline"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "latentbudget:", err)
		os.Exit(1)
	}
}

// config holds the command-line settings.
type config struct {
	dir     string
	scales  []int
	steps   int
	runs    int
	threads int
	prompt  string
	seed    uint64
	cpuProf string
	shapes  string // "off", "on" or "both"
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("latentbudget", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.dir, "model", "testdata/models/fashion_ldm_eps", "the latent model's folder (diffusers' ONNX layout; looked up from the working directory and its parents)")
	scales := fs.String("scales", "1,2,4", "comma-separated multiples of the training size (1 to 8)")
	fs.IntVar(&c.steps, "steps", 20, "DDIM steps")
	fs.IntVar(&c.runs, "runs", 5, "timed runs per size (medians are reported); one untimed warm-up run precedes them")
	fs.IntVar(&c.threads, "threads", 2, "ONNX Runtime intra-op threads (0: the runtime's default)")
	fs.StringVar(&c.prompt, "prompt", "a photo of a sneaker", "the prompt")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the initial latents")
	fs.StringVar(&c.cpuProf, "cpuprofile", "", "write a CPU profile of the timed runs to this file (go tool pprof: Go code outside cgocall is the Go side in CPU time, which other load on the machine does not inflate)")
	fs.StringVar(&c.shapes, "shapes", "off", "shape-specialised sessions (onnx.WithShapeSessions) for every model: off, on, or both (each size with and without)")
	if err := cli.Parse(fs, args); err != nil {
		return nil, err
	}
	if c.shapes != "off" && c.shapes != "on" && c.shapes != "both" {
		return nil, fmt.Errorf("-shapes %q: want off, on or both", c.shapes)
	}
	for _, f := range cli.Split(*scales) {
		var s int
		if _, err := fmt.Sscan(f, &s); err != nil || s < 1 || s > 8 {
			return nil, fmt.Errorf("-scales: %q is not a number from 1 to 8", f)
		}
		c.scales = append(c.scales, s)
	}
	if len(c.scales) == 0 {
		return nil, errors.New("-scales: no scale")
	}
	if err := cli.First(cli.Between("steps", c.steps, 1, 1000), cli.Between("runs", c.runs, 1, 1000), cli.Threads("threads", c.threads)); err != nil {
		return nil, err
	}
	return c, nil
}

// runLog records the ONNX Runtime Run calls of all three models
// (onnx.WithRunObserver).
type runLog struct {
	mu   sync.Mutex
	runs []onnx.RunTiming
}

func (l *runLog) observe(r onnx.RunTiming) {
	l.mu.Lock()
	l.runs = append(l.runs, onnx.RunTiming{Path: r.Path, Start: r.Start, End: r.End, Err: r.Err,
		Inputs: [][]int64{slices.Clone(r.Inputs[0])}}) // the sample's (or token ids') dims
	l.mu.Unlock()
}

// take returns the runs recorded since the last take.
func (l *runLog) take() []onnx.RunTiming {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.runs
	l.runs = nil
	return r
}

// busy is the length of the union of the runs' intervals: the time in
// which at least one of them was in flight.
func busy(runs []onnx.RunTiming) time.Duration {
	runs = slices.Clone(runs)
	slices.SortFunc(runs, func(a, b onnx.RunTiming) int { return a.Start.Compare(b.Start) })
	var d time.Duration
	var end time.Time
	for _, r := range runs {
		if r.Start.After(end) {
			d += r.Duration()
			end = r.End
		} else if r.End.After(end) {
			d += r.End.Sub(end)
			end = r.End
		}
	}
	return d
}

// budget is the breakdown of one run.
type budget struct {
	total, tokenizer, text, unetHigh, unetLow, vae, denoiseRest, png, rest time.Duration
	highCalls, lowCalls                                                    int
}

// rows names the parts of a budget in table order; model marks the rows
// that are ONNX Runtime calls.
var rows = []struct {
	name  string
	model bool
	get   func(b *budget) time.Duration
}{
	{"tokenizer", false, func(b *budget) time.Duration { return b.tokenizer }},
	{"text encoder", true, func(b *budget) time.Duration { return b.text }},
	{"UNet, full resolution", true, func(b *budget) time.Duration { return b.unetHigh }},
	{"UNet, low resolution", true, func(b *budget) time.Duration { return b.unetLow }},
	{"VAE decoder", true, func(b *budget) time.Duration { return b.vae }},
	{"guidance, CFG and sampler", false, func(b *budget) time.Duration { return b.denoiseRest }},
	{"PNG", false, func(b *budget) time.Duration { return b.png }},
	{"rest of the run", false, func(b *budget) time.Duration { return b.rest }},
}

func (b *budget) goSide() time.Duration {
	var d time.Duration
	for _, r := range rows {
		if !r.model {
			d += r.get(b)
		}
	}
	return d
}

// once runs one generation at scale s and breaks it down.
func once(ctx context.Context, m *pipeline.Model, log *runLog, c *config, s int) (*budget, error) {
	size := m.Info().SampleSize
	b := &budget{}
	// Generate tokenizes the prompt and the negative prompt itself; their
	// cost is measured on its own here, outside the timed run, and taken
	// out of the rest of the run below.
	tokStart := time.Now()
	tok := m.Tokenizer()
	tok.EncodePadded(c.prompt)
	tok.EncodePadded("")
	b.tokenizer = time.Since(tokStart)
	log.take()
	var encoded, denoised time.Time
	req := pipeline.Request{Prompt: c.prompt, Width: s * size, Height: s * size, Steps: c.steps, Seed: c.seed,
		Progress: func(p pipeline.Progress) error {
			switch {
			case p.Stage == pipeline.StageEncode:
				encoded = time.Now()
			case p.Stage == pipeline.StageDenoise && p.Done == p.Total:
				denoised = time.Now()
			}
			return nil
		}}
	start := time.Now()
	res, err := m.Generate(ctx, req)
	if err != nil {
		return nil, err
	}
	img, err := res.Image(0)
	if err != nil {
		return nil, err
	}
	pngStart := time.Now()
	if err := picture.EncodePNG(io.Discard, img); err != nil {
		return nil, err
	}
	end := time.Now()
	b.png = end.Sub(pngStart)
	b.total = end.Sub(start)
	if encoded.IsZero() || denoised.IsZero() {
		return nil, errors.New("the run did not report its stages")
	}
	lat := res.Settings.Latent
	full := []int64{int64(lat[0]), int64(lat[1]), int64(lat[2]), int64(lat[3])}
	var unet []onnx.RunTiming
	runs := log.take()
	for _, r := range runs {
		switch filepath.Base(filepath.Dir(r.Path)) {
		case "text_encoder":
			b.text += r.Duration()
		case "vae_decoder":
			b.vae += r.Duration()
		case "unet":
			unet = append(unet, r)
			// Under CFG the batch holds the conditional and the
			// unconditional sample.
			if slices.Equal(r.Inputs[0][1:], full[1:]) {
				b.unetHigh += r.Duration()
				b.highCalls++
			} else {
				b.unetLow += r.Duration()
				b.lowCalls++
			}
		default:
			return nil, fmt.Errorf("a run of an unexpected model %s", r.Path)
		}
	}
	unetBusy := busy(unet)
	if over := b.unetHigh + b.unetLow - unetBusy; over > 0 {
		// Concurrent calls: count their overlap once, in the full-resolution row.
		b.unetHigh -= over
	}
	// The denoise stage less the time a UNet call was in flight is what
	// the guidance, the CFG combination and the sampler took.
	b.denoiseRest = max(denoised.Sub(encoded)-unetBusy, 0)
	b.rest = max(b.total-busy(runs)-b.denoiseRest-b.png-b.tokenizer, 0)
	return b, nil
}

func run(args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	dir, err := fashion.FindFile(c.dir)
	if err != nil {
		return err
	}
	// A variant is a size and whether the pipeline runs in shape-specialised
	// sessions; each kind of pipeline is loaded once.
	type variant struct {
		scale  int
		shapes bool
	}
	var variants []variant
	models := map[bool]*pipeline.Model{}
	log := &runLog{}
	for _, spec := range []bool{false, true} {
		if (spec && c.shapes == "off") || (!spec && c.shapes == "on") {
			continue
		}
		for _, s := range c.scales {
			variants = append(variants, variant{s, spec})
		}
		opts := []onnx.Option{onnx.WithThreads(c.threads, 1), onnx.WithRunObserver(log.observe)}
		if spec {
			// Per model: the UNet's two shapes per size, the VAE's one, the
			// text encoder's one.
			opts = append(opts, onnx.WithShapeSessions(min(2*len(c.scales)+1, onnx.MaxShapeSessions)))
		}
		m, err := pipeline.Load(dir, pipeline.WithONNXOptions(opts...))
		if err != nil {
			return err
		}
		defer m.Close()
		models[spec] = m
	}
	name := func(v variant) string {
		if v.shapes {
			return fmt.Sprintf("%dx (shapes)", v.scale)
		}
		return fmt.Sprintf("%dx", v.scale)
	}
	ctx := context.Background()
	results := make([][]*budget, len(variants))
	for _, v := range variants { // warm-up: sessions see each shape once
		if _, err := once(ctx, models[v.shapes], log, c, v.scale); err != nil {
			return fmt.Errorf("%s: %w", name(v), err)
		}
	}
	stopProfile, err := cli.StartCPUProfile(c.cpuProf)
	if err != nil {
		return err
	}
	defer stopProfile()
	for r := range c.runs {
		for j := range variants {
			i := (j + r) % len(variants)
			v := variants[i]
			fmt.Fprintf(stderr, "\rrun %d/%d, %-14s", r+1, c.runs, name(v))
			b, err := once(ctx, models[v.shapes], log, c, v.scale)
			if err != nil {
				return fmt.Errorf("%s: %w", name(v), err)
			}
			results[i] = append(results[i], b)
		}
	}
	fmt.Fprintln(stderr)
	size := models[variants[0].shapes].Info().SampleSize
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(stdout, "# Latent pipeline budget\n\n%s, %d DDIM steps, CFG 7.5 (one batched UNet call), Upsample Guidance at the pipeline's defaults; %d intra-op threads; shape-specialised sessions: %s; medians of %d runs; load average %s.\n\n",
		dir, c.steps, c.threads, c.shapes, c.runs, strings.Join(strings.Fields(string(load))[:min(3, len(strings.Fields(string(load))))], " "))
	header := "| part |"
	sep := "| --- |"
	for _, v := range variants {
		label := ""
		if v.shapes {
			label = ", shapes"
		}
		header += fmt.Sprintf(" %d px%s ms | share |", v.scale*size, label)
		sep += " ---: | ---: |"
	}
	fmt.Fprintln(stdout, header)
	fmt.Fprintln(stdout, sep)
	med := func(bs []*budget, f func(*budget) time.Duration) time.Duration {
		v := make([]time.Duration, len(bs))
		for i, b := range bs {
			v[i] = f(b)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	msf := func(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }
	// share is the median over the runs of a part's share of its run.
	share := func(bs []*budget, f func(*budget) time.Duration) string {
		v := make([]float64, len(bs))
		for i, b := range bs {
			v[i] = float64(f(b)) / float64(b.total)
		}
		slices.Sort(v)
		return fmt.Sprintf("%.2f%%", 100*v[len(v)/2])
	}
	for _, r := range rows {
		line := "| " + r.name + " |"
		for i := range variants {
			line += fmt.Sprintf(" %s | %s |", msf(med(results[i], r.get)), share(results[i], r.get))
		}
		fmt.Fprintln(stdout, line)
	}
	line, goLine := "| **total** |", "| **Go side** (no ONNX Runtime call in flight) |"
	for i := range variants {
		line += fmt.Sprintf(" %s | 100%% |", msf(med(results[i], func(b *budget) time.Duration { return b.total })))
		goLine += fmt.Sprintf(" %s | %s |", msf(med(results[i], (*budget).goSide)), share(results[i], (*budget).goSide))
	}
	fmt.Fprintln(stdout, line)
	fmt.Fprintln(stdout, goLine)
	calls := "| UNet calls (full + low) |"
	for i := range variants {
		b := results[i][0]
		calls += fmt.Sprintf(" %d + %d | |", b.highCalls, b.lowCalls)
	}
	fmt.Fprintln(stdout, calls)
	return nil
}
