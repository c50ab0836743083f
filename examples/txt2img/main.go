// Command txt2img generates images from text with a Stable Diffusion-style
// ONNX model folder (diffusers' OnnxStableDiffusionPipeline or optimum
// layout), at the model's training size or at 2x-4x of it with Upsample
// Guidance, and writes a PNG.
//
//	go run ./examples/txt2img -model ./stable-diffusion-v1-5-onnx \
//	    -prompt "a photo of a cat sitting on a wooden table" \
//	    -size 1024x1024 -steps 50 -cfg 7.5 -seed 42 -out cat.png
//
// Upsample Guidance is on by default (theta 1.2, eta 0.6, factors from the
// size: 1024x1024 on a 512 model is 2x2); -ug-factor off disables it and
// -ug-factor 2x3 forces factors. Images above 1024x1024 pixels are decoded in
// overlapping tiles (-tile). The ONNX Runtime library is found as the onnx
// package documents (ONNXRUNTIME_SHARED_LIBRARY_PATH; `make ort` in the ugo
// repository). Without a real model, try the tiny random-weight test folder:
//
//	go run ./examples/txt2img -model testdata/sdtiny/fp32 -size 256x256 -steps 10 -out tiny.png
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/ugo-diffusion/ugo/examples/internal/cli"
	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/onnx"
	"github.com/ugo-diffusion/ugo/pipeline"
	"github.com/ugo-diffusion/ugo/schedule"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "txt2img:", err)
		os.Exit(1)
	}
}

// options are the parsed command line.
type options struct {
	model, prompt, negative, out string
	width, height                int
	req                          pipeline.Request
	onnx                         []onnx.Option
	device                       onnx.Device
	sampleSize                   int
	memstats, quiet              bool
}

func parse(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("txt2img", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	fs.StringVar(&o.model, "model", "", "model folder (text_encoder/, unet/, vae_decoder/, tokenizer/, scheduler/); required")
	fs.StringVar(&o.prompt, "prompt", "", "text prompt")
	fs.StringVar(&o.negative, "negative", "", "negative prompt (replaces the empty unconditional prompt)")
	size := fs.String("size", "", "image size WxH in pixels, multiples of the VAE scale (8 for SD; default: the model's training size)")
	steps := fs.Int("steps", pipeline.DefaultSteps, "sampling steps")
	samp := fs.String("sampler", pipeline.SamplerDDIM, "sampler: "+strings.Join(pipeline.Samplers, ", "))
	ddimEta := fs.Float64("ddim-eta", 0, "DDIM eta (0: deterministic)")
	cfg := fs.Float64("cfg", pipeline.DefaultGuidanceScale, "classifier-free guidance scale (<= 1: no unconditional branch)")
	def := guidance.LatentUpsampleOptions()
	theta := fs.Float64("ug-theta", def.Theta, "Upsample Guidance weight theta (0: off)")
	eta := fs.Float64("ug-eta", def.Eta, "Upsample Guidance window: on while t >= (1-eta)*T")
	factor := fs.String("ug-factor", "auto", "Upsample Guidance factors: auto, off, N (both axes) or HxW such as 2x3")
	nearest := fs.Bool("ug-nearest", false, "match the low-resolution time to the nearest training step instead of a fractional one")
	seed := fs.Int64("seed", -1, "seed of torch.manual_seed-compatible initial noise (-1: random)")
	images := fs.Int("images", 1, "number of images, side by side in the PNG")
	fs.StringVar(&o.out, "out", "txt2img.png", "output PNG path")
	tile := fs.String("tile", "auto", "VAE decoding: auto (tiles above 1024x1024), always or never")
	tileSize := fs.Int("tile-size", pipeline.DefaultTileSize, "tile side in latent pixels (times the VAE scale in image pixels)")
	overlap := fs.Int("tile-overlap", pipeline.DefaultTileOverlap, "minimum tile overlap in latent pixels")
	device := fs.String("device", "cpu", "where the models run: cpu, cuda, cuda:N, tensorrt, tensorrt:N or webgpu (a bare N is the GPU index of -provider)")
	provider := fs.String("provider", "", "deprecated spelling of the -device kind: cpu, cuda or tensorrt")
	fallback := fs.Bool("fallback", false, "fall back to the CPU when the GPU provider is unavailable")
	threads := fs.Int("threads", 0, "ONNX Runtime intra-op threads (0: runtime default)")
	fs.IntVar(&o.sampleSize, "sample-size", 0, "training size in pixels (default: the folder's configs, else inferred, else 512 with a warning)")
	fs.BoolVar(&o.memstats, "memstats", false, "print the peak resident memory at the end (Linux)")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress bar")
	if err := cli.Parse(fs, args); err != nil {
		return nil, err
	}
	if o.model == "" {
		return nil, errors.New("-model is required")
	}
	if *size != "" {
		w, h, ok := parsePair(*size)
		if !ok || w <= 0 || h <= 0 || w%8 != 0 || h%8 != 0 || w > pipeline.MaxSampleSize || h > pipeline.MaxSampleSize {
			return nil, fmt.Errorf("-size %q: want WxH, positive multiples of 8 up to %d, such as 1024x1024", *size, pipeline.MaxSampleSize)
		}
		o.width, o.height = w, h
	}
	// Everything Load and Resolve would refuse only after loading the model.
	if err := cli.First(
		cli.Between("steps", *steps, 1, 10000), cli.Between("images", *images, 1, 64),
		cli.Threads("threads", *threads), cli.NonNegative("sample-size", o.sampleSize),
		cli.Between("sample-size", o.sampleSize, 0, pipeline.MaxSampleSize),
		cli.Positive("tile-size", *tileSize), cli.NonNegative("tile-overlap", *overlap),
		cli.Finite("cfg", *cfg, -math.MaxFloat32, math.MaxFloat32), cli.Finite("ddim-eta", *ddimEta, 0, math.MaxFloat32),
		cli.Finite("ug-theta", *theta, -math.MaxFloat32, math.MaxFloat32), cli.Finite("ug-eta", *eta, 0, 1),
	); err != nil {
		return nil, err
	}
	if o.width > 0 {
		if err := cli.Memory(fmt.Sprintf("%d %dx%d images", *images, o.width, o.height), 3, *images, 3, o.height, o.width); err != nil {
			return nil, err
		}
	}
	s := *seed
	if s < 0 {
		s = rand.Int64N(1 << 31)
	}
	r := &o.req
	*r = pipeline.Request{Prompt: o.prompt, NegativePrompt: o.negative, Width: o.width, Height: o.height,
		Steps: *steps, Sampler: *samp, DDIMEta: *ddimEta, GuidanceScale: cfg, Seed: uint64(s), Images: *images}
	ug := &guidance.UpsampleOptions{Theta: *theta, Eta: *eta}
	if *nearest {
		ug.TimeMatching = schedule.Nearest
	}
	switch f := strings.ToLower(*factor); f {
	case "auto":
	case "off", "none", "1", "1x1":
		ug.Theta = 0
	default:
		if n, err := strconv.Atoi(f); err == nil && n >= 1 && n <= 64 {
			ug.Factors = []int{n, n}
		} else if h, w, ok := parsePair(f); ok && h >= 1 && w >= 1 && h <= 64 && w <= 64 {
			ug.Factors = []int{h, w}
		} else {
			return nil, fmt.Errorf("-ug-factor %q: want auto, off, N or HxW (factors 1 to 64)", *factor)
		}
	}
	r.Upsample = ug
	switch *tile {
	case "auto":
	case "always":
		r.Decode.Tiling = pipeline.TileAlways
	case "never":
		r.Decode.Tiling = pipeline.TileNever
	default:
		return nil, fmt.Errorf("-tile %q: want auto, always or never", *tile)
	}
	r.Decode.TileSize, r.Decode.Overlap = *tileSize, *overlap
	if *threads > 0 {
		o.onnx = append(o.onnx, onnx.WithThreads(*threads, 1))
	}
	var err error
	if o.device, err = parseDevice(*device, *provider); err != nil {
		return nil, err
	}
	o.onnx = append(o.onnx, o.device.Options()...)
	if *fallback {
		o.onnx = append(o.onnx, onnx.WithFallback(onnx.FallbackCPU))
	}
	return o, nil
}

// parseDevice reads -device, which names a device ("cuda:1") or, as the
// flag used to, a bare GPU index for the kind that -provider names.
func parseDevice(device, provider string) (onnx.Device, error) {
	if provider != "" && provider != onnx.DeviceCPU && provider != onnx.DeviceCUDA && provider != onnx.DeviceTensorRT {
		return onnx.Device{}, fmt.Errorf("-provider %q: want cpu, cuda or tensorrt (or use -device)", provider)
	}
	if n, err := strconv.Atoi(device); err == nil {
		if (provider == "" || provider == onnx.DeviceCPU) && n == 0 {
			return onnx.Device{Kind: onnx.DeviceCPU}, nil
		}
		if provider == "" || provider == onnx.DeviceCPU {
			return onnx.Device{}, fmt.Errorf("-device %d: a bare GPU index needs -provider cuda or tensorrt (or write -device cuda:%d)", n, n)
		}
		device = provider + ":" + device
	}
	d, err := onnx.ParseDevice(device)
	if err != nil {
		return onnx.Device{}, fmt.Errorf("-device: %w", err)
	}
	if provider != "" && device == "cpu" {
		d.Kind = provider
	} else if provider != "" && d.Kind != provider {
		return onnx.Device{}, fmt.Errorf("-provider %s and -device %s disagree", provider, d)
	}
	return d, nil
}

// parsePair parses "AxB".
func parsePair(s string) (int, int, bool) {
	a, b, ok := strings.Cut(strings.ToLower(s), "x")
	if !ok {
		return 0, 0, false
	}
	x, err1 := strconv.Atoi(a)
	y, err2 := strconv.Atoi(b)
	return x, y, err1 == nil && err2 == nil && x > 0 && y > 0
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parse(args, stderr)
	if err != nil {
		return err
	}
	opts := []pipeline.Option{pipeline.WithONNXOptions(o.onnx...)}
	if o.sampleSize > 0 {
		opts = append(opts, pipeline.WithSampleSize(o.sampleSize))
	}
	start := time.Now()
	m, err := pipeline.Load(o.model, opts...)
	if err != nil {
		return err
	}
	defer m.Close()
	info := m.Info()
	family := ""
	if info.SDXL {
		family = fmt.Sprintf(" (SDXL: two text encoders, %d-wide pooled embedding, time_ids per UNet call)", info.PooledSize)
	}
	fmt.Fprintf(stdout, "model %s: trained at %d px (%s), %d-wide text states%s, scaling factor %g (%s), providers %v, loaded in %.1fs\n",
		o.model, info.SampleSize, info.SampleSizeSource, info.HiddenSize, family, info.ScalingFactor, info.ScalingFactorSource, info.UNet.Providers, time.Since(start).Seconds())
	p, err := m.Resolve(o.req)
	if err != nil {
		return err
	}
	ug := "off"
	if u := p.Upsample; u != nil {
		ug = fmt.Sprintf("factors %dx%d, theta %g, eta %g (%d of %d steps)", u.Factors[0], u.Factors[1], u.Theta, u.Eta, p.GuidedSteps, p.Steps)
	}
	fmt.Fprintf(stdout, "%dx%d, %d %s steps, cfg %g, seed %d, Upsample Guidance %s, VAE decode in %d tile(s) per image\n",
		p.Width, p.Height, p.Steps, p.Sampler, p.GuidanceScale, o.req.Seed, ug, p.TilesPerImage)

	if !o.quiet {
		o.req.Progress = progressBar(stderr, time.Now())
	}
	start = time.Now()
	res, err := m.Generate(ctx, o.req)
	if !o.quiet {
		fmt.Fprintln(stderr)
	}
	if err != nil {
		return err
	}
	if res.Truncated {
		fmt.Fprintln(stderr, "txt2img: warning: a prompt was longer than CLIP's 75 tokens and was truncated")
	}
	if err := res.WritePNG(o.out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s in %.1fs\n", o.out, time.Since(start).Seconds())
	if o.memstats {
		if kb, err := peakRSS(); err == nil {
			fmt.Fprintf(stdout, "peak resident memory: %d MB\n", kb>>10)
		}
	}
	return nil
}

// progressBar draws a one-line progress bar on w.
func progressBar(w io.Writer, start time.Time) func(pipeline.Progress) error {
	return func(p pipeline.Progress) error {
		const width = 30
		filled := width * p.Done / max(1, p.Total)
		bar := strings.Repeat("#", filled) + strings.Repeat(".", width-filled)
		extra := ""
		if p.Stage == pipeline.StageDenoise {
			extra = fmt.Sprintf(" t=%-5.4g", p.Step.ModelTimestep)
			if p.Upsampled {
				extra += " UG"
			} else {
				extra += "   "
			}
		}
		fmt.Fprintf(w, "\r%-7s [%s] %3d/%-3d%s %5.1fs", p.Stage, bar, p.Done, p.Total, extra, time.Since(start).Seconds())
		return nil
	}
}

// peakRSS returns the process's peak resident set size in kB (VmHWM).
func peakRSS() (int, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				return strconv.Atoi(f[0])
			}
		}
	}
	return 0, errors.New("no VmHWM")
}
