// Command latentbudget breaks one text-to-image run of the latent pipeline
// (package pipeline, on testdata/models/fashion_ldm_eps by default) into
// where its time goes, at the training size and at 2x and 4x with Upsample
// Guidance (the pipeline's defaults: theta 1.2 on the noisiest 60% of the
// steps, classifier-free guidance at 7.5 in one batched UNet call):
//
//   - tokenizer: CLIP BPE of the prompt and the negative prompt (Go);
//   - text encoder: the encode stage of Generate less the tokenizer;
//   - UNet at full and at low resolution: the UNet calls as seen from Go
//     (pipeline.WithUNetMiddleware), ONNX Runtime's run plus the binding's
//     copies in and out, with the classifier-free-guidance combination;
//   - guidance and sampler: the rest of the denoise stage (pooling, the
//     guidance term, the sampler's update, progress reports);
//   - VAE decode: the decode stage;
//   - PNG: encoding the image (Go, picture.EncodePNG), written to memory;
//   - other: the rest of the run (setting up, drawing the initial latents).
//
// The "Go side" is every row but the three model rows: time in which no
// ONNX Runtime call was in flight. Each run is timed whole; the times are
// medians over -runs runs, visited interleaved across sizes, and each share
// is the median over the runs of the part's share of its own run (so the
// columns need not add up exactly). On a machine
// that other work shares, the shares mean more than the milliseconds.
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
	"slices"
	"strings"
	"sync"
	"time"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
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

// unetTimer records the UNet calls by sample shape and the time during
// which at least one was in flight.
type unetTimer struct {
	model ugo.Denoiser

	mu       sync.Mutex
	inFlight int
	since    time.Time
	busy     time.Duration
	byShape  map[string]*shapeTime
}

type shapeTime struct {
	calls int
	dur   time.Duration
}

func (u *unetTimer) FillsCPU() bool { return ugo.FillsCPU(u.model) }

func (u *unetTimer) PredictNoise(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
	u.mu.Lock()
	start := time.Now()
	if u.inFlight == 0 {
		u.since = start
	}
	u.inFlight++
	u.mu.Unlock()
	err := u.model.PredictNoise(ctx, dst, x, t)
	u.mu.Lock()
	end := time.Now()
	u.inFlight--
	if u.inFlight == 0 {
		u.busy += end.Sub(u.since)
	}
	k := fmt.Sprint([]int(x.Shape()))
	st := u.byShape[k]
	if st == nil {
		st = &shapeTime{}
		u.byShape[k] = st
	}
	st.calls++
	st.dur += end.Sub(start)
	u.mu.Unlock()
	return err
}

func (u *unetTimer) reset() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.busy, u.byShape = 0, map[string]*shapeTime{}
}

// budget is the breakdown of one run.
type budget struct {
	total, tokenizer, text, unetHigh, unetLow, denoiseRest, vae, png, other time.Duration
	highCalls, lowCalls                                                     int
}

// rows names the parts of a budget in table order; model marks the rows
// that are model calls.
var rows = []struct {
	name  string
	model bool
	get   func(b *budget) time.Duration
}{
	{"tokenizer", false, func(b *budget) time.Duration { return b.tokenizer }},
	{"text encoder", true, func(b *budget) time.Duration { return b.text }},
	{"UNet, full resolution", true, func(b *budget) time.Duration { return b.unetHigh }},
	{"UNet, low resolution", true, func(b *budget) time.Duration { return b.unetLow }},
	{"guidance and sampler", false, func(b *budget) time.Duration { return b.denoiseRest }},
	{"VAE decode", true, func(b *budget) time.Duration { return b.vae }},
	{"PNG", false, func(b *budget) time.Duration { return b.png }},
	{"other", false, func(b *budget) time.Duration { return b.other }},
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
func once(ctx context.Context, m *pipeline.Model, timer *unetTimer, c *config, s int) (*budget, error) {
	size := m.Info().SampleSize
	timer.reset()
	b := &budget{}
	start := time.Now()
	tok := m.Tokenizer()
	tok.EncodePadded(c.prompt)
	tok.EncodePadded("")
	b.tokenizer = time.Since(start)
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
	genStart := time.Now()
	res, err := m.Generate(ctx, req)
	if err != nil {
		return nil, err
	}
	genEnd := time.Now()
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
	// Generate tokenizes again before encoding: the encode stage less one
	// tokenizer measurement is the text encoder.
	b.text = max(encoded.Sub(genStart)-b.tokenizer, 0)
	lat := res.Settings.Latent
	full := fmt.Sprint([]int{1, lat[1], lat[2], lat[3]})
	for k, st := range timer.byShape {
		if k == full {
			b.unetHigh, b.highCalls = st.dur, st.calls
		} else {
			b.unetLow += st.dur
			b.lowCalls += st.calls
		}
	}
	// The calls may overlap: the denoise stage less the time a call was in
	// flight is what the guidance and the sampler took.
	b.denoiseRest = max(denoised.Sub(encoded)-timer.busy, 0)
	if over := b.unetHigh + b.unetLow - timer.busy; over > 0 {
		// Concurrent calls: count their overlap once, in the full-resolution row.
		b.unetHigh -= over
	}
	b.vae = genEnd.Sub(denoised)
	b.other = max(b.total-b.tokenizer-b.text-b.unetHigh-b.unetLow-b.denoiseRest-b.vae-b.png, 0)
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
	// sessions; each kind of pipeline is loaded once, with its own timer.
	type variant struct {
		scale  int
		shapes bool
	}
	var variants []variant
	models := map[bool]*pipeline.Model{}
	timers := map[bool]*unetTimer{}
	for _, spec := range []bool{false, true} {
		if (spec && c.shapes == "off") || (!spec && c.shapes == "on") {
			continue
		}
		for _, s := range c.scales {
			variants = append(variants, variant{s, spec})
		}
		timer := &unetTimer{byShape: map[string]*shapeTime{}}
		opts := []onnx.Option{onnx.WithThreads(c.threads, 1)}
		if spec {
			// Per model: the UNet's two shapes per size, the VAE's one, the
			// text encoder's one.
			opts = append(opts, onnx.WithShapeSessions(min(2*len(c.scales)+1, onnx.MaxShapeSessions)))
		}
		m, err := pipeline.Load(dir, pipeline.WithONNXOptions(opts...),
			pipeline.WithUNetMiddleware(func(d ugo.Denoiser) ugo.Denoiser { timer.model = d; return timer }))
		if err != nil {
			return err
		}
		defer m.Close()
		models[spec], timers[spec] = m, timer
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
		if _, err := once(ctx, models[v.shapes], timers[v.shapes], c, v.scale); err != nil {
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
			b, err := once(ctx, models[v.shapes], timers[v.shapes], c, v.scale)
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
	line, goLine := "| **total** |", "| **Go side** (no model call in flight) |"
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
