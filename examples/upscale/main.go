// Command upscale samples a diffusion model above its training resolution
// in four ways, from the same seeds, and writes every stage's images:
//
//   - ug: direct sampling at the final size with Upsample Guidance;
//   - ug-stages: Upsample Guidance at the first size, then SDEdit refinement
//     with Upsample Guidance at each further size (2x then 2x);
//   - refine: a native sample, then SDEdit refinement of its upscale at each
//     size (the hires fix: -filter upscale, noise to -strength, denoise);
//   - scalediff: as refine, with ScaleDiff's Latent Frequency Mixing and
//     Structure Guidance (Neighborhood Patch Attention needs the network's
//     attention and is not available; see package upscale);
//   - sr and sr-refine, with -sr: a native sample enlarged to the final
//     size by a super-resolution model (package superres; resized when its
//     scale does not land there), then, for sr-refine, SDEdit refinement
//     at that size with Structure Guidance.
//
// For the shipped Fashion-MNIST model (a pixel-space model trained at 28x28):
//
//	go run ./examples/upscale -out out/upscale                # 28 -> 56 -> 112
//	go run ./examples/upscale -sizes 112 -methods refine,scalediff
//	go run ./examples/upscale -sizes 112 -sr testdata/models/esrgan_slim_x4.onnx
//
// For a Stable Diffusion ONNX folder (a latent model: the refinements mix
// frequencies through its VAE, vae_encoder/ included), sizes are in pixels:
//
//	go run ./examples/upscale -model ./stable-diffusion-v1-5-onnx \
//	    -prompt "a photo of a cat" -sizes 1024 -steps 30 -n 1
//
// Each method writes <method>_<stage>_<size>.png, a grid of the images of
// that stage, and compare_<size>.png puts the final images of all methods
// side by side in the order given.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo/examples/internal/cli"
	"github.com/ugo-diffusion/ugo/examples/internal/fashion"
	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/onnx"
	"github.com/ugo-diffusion/ugo/picture"
	"github.com/ugo-diffusion/ugo/pipeline"
	"github.com/ugo-diffusion/ugo/resize"
	"github.com/ugo-diffusion/ugo/sampler"
	"github.com/ugo-diffusion/ugo/schedule"
	"github.com/ugo-diffusion/ugo/superres"
	"github.com/ugo-diffusion/ugo/upscale"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "upscale:", err)
		os.Exit(1)
	}
}

// methods are the pipelines the program compares, in their default order.
var methods = []string{"ug", "ug-stages", "refine", "scalediff"}

// srMethods need a super-resolution model (-sr); they join the default
// methods when one is given.
var srMethods = []string{"sr", "sr-refine"}

type options struct {
	model, out, prompt, negative string
	methods                      []string
	sizes                        []int
	n, cols, steps               int
	seed                         uint64
	strength, cutoff, cfg        float64
	filter                       resize.Strategy
	trained, channels            int
	sampleSize                   int
	onnx                         []onnx.Option
	device                       onnx.Device
	sr                           string
	srScale                      int
}

func parse(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("upscale", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	fs.StringVar(&o.model, "model", "", "ONNX eps model file (pixel space; default: the shipped Fashion-MNIST model) or Stable Diffusion ONNX folder (latent)")
	fs.StringVar(&o.out, "out", "out/upscale", "output folder")
	meth := fs.String("methods", strings.Join(methods, ","), "comma-separated methods: "+strings.Join(methods, ", "))
	sizes := fs.String("sizes", "", "comma-separated stage sizes above the training size, in pixels (default: 2x,4x for pixel models, 2x for latent models)")
	fs.IntVar(&o.n, "n", 16, "images")
	fs.IntVar(&o.cols, "cols", 4, "images per grid row")
	fs.IntVar(&o.steps, "steps", 50, "steps of a full run (a refinement runs the last strength*steps)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed: image i uses seed+i (pixel models) or one torch generator for the batch (latent models)")
	fs.Float64Var(&o.strength, "strength", 0, "SDEdit strength of each refinement, in (0, 1] (default: 0.3 for pixel models, 0.5 for latent models)")
	fs.Float64Var(&o.cutoff, "cutoff", upscale.DefaultCutoff, "low-pass cutoff sf of frequency mixing and structure guidance")
	filter := fs.String("filter", "bicubic", "upscaling filter of the refinements: "+strategyNames())
	fs.IntVar(&o.trained, "trained", fashion.TrainedSize, "training size of a pixel model")
	fs.IntVar(&o.channels, "channels", 1, "channels of a pixel model (1 or 3 are written as images; otherwise channel 0)")
	fs.StringVar(&o.prompt, "prompt", "", "text prompt (latent models)")
	fs.StringVar(&o.negative, "negative", "", "negative prompt (latent models)")
	fs.Float64Var(&o.cfg, "cfg", pipeline.DefaultGuidanceScale, "classifier-free guidance scale (latent models)")
	fs.IntVar(&o.sampleSize, "sample-size", 0, "training size of a latent model in pixels (default: from its config)")
	threads := fs.Int("threads", 0, "ONNX Runtime intra-op threads (0: runtime default)")
	fs.Var(&o.device, "device", "where the models run: cpu, cuda, cuda:N, tensorrt, tensorrt:N or webgpu")
	fs.StringVar(&o.sr, "sr", "", "ONNX super-resolution model (NHWC RGB in [0, 255], as testdata/models/esrgan_slim_x4.onnx) for the methods sr and sr-refine")
	fs.IntVar(&o.srScale, "sr-scale", 4, "upscaling factor of the -sr model")
	if err := cli.Parse(fs, args); err != nil {
		return nil, err
	}
	if o.n <= 0 || o.cols <= 0 || o.steps <= 0 || o.trained <= 0 || o.channels <= 0 {
		return nil, errors.New("-n, -cols, -steps, -trained and -channels must be positive")
	}
	if err := cli.First(cli.Threads("threads", *threads), cli.Between("steps", o.steps, 1, 100000),
		cli.Between("trained", o.trained, 1, maxSize), cli.Between("channels", o.channels, 1, 1024),
		cli.Between("sample-size", o.sampleSize, 0, maxSize), cli.Finite("cfg", o.cfg, -math.MaxFloat32, math.MaxFloat32),
		cli.Between("sr-scale", o.srScale, 1, 64)); err != nil {
		return nil, err
	}
	if !(o.strength >= 0 && o.strength <= 1) {
		return nil, fmt.Errorf("-strength %v, want a value in (0, 1] (0: the default)", o.strength)
	}
	if !(o.cutoff > 0 && o.cutoff <= 1) {
		return nil, fmt.Errorf("-cutoff %v, want a value in (0, 1]", o.cutoff)
	}
	var err error
	if o.filter, err = resize.ByName(*filter); err != nil {
		return nil, err
	}
	if o.sr != "" && o.srScale <= 0 {
		return nil, fmt.Errorf("-sr-scale %d, want a positive factor", o.srScale)
	}
	methodsSet := false
	fs.Visit(func(f *flag.Flag) { methodsSet = methodsSet || f.Name == "methods" })
	if o.sr != "" && !methodsSet {
		*meth += "," + strings.Join(srMethods, ",")
	}
	for _, m := range strings.Split(*meth, ",") {
		m = strings.TrimSpace(m)
		if contains(srMethods, m) && o.sr == "" {
			return nil, fmt.Errorf("method %q needs a super-resolution model (-sr)", m)
		}
		if !contains(methods, m) && !contains(srMethods, m) {
			return nil, fmt.Errorf("unknown method %q, want some of %s", m, strings.Join(append(methods, srMethods...), ", "))
		}
		o.methods = append(o.methods, m)
	}
	if *sizes != "" {
		for _, f := range strings.Split(*sizes, ",") {
			v, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || v <= 0 || v > maxSize {
				return nil, fmt.Errorf("-sizes: %q is not a positive size up to %d", f, maxSize)
			}
			if len(o.sizes) > 0 && v <= o.sizes[len(o.sizes)-1] {
				return nil, errors.New("-sizes must increase")
			}
			o.sizes = append(o.sizes, v)
		}
	}
	// The largest stage of a pixel model: n images of the largest size
	// (4x the training size by default), with the sampler's, guidance's and
	// the stages' buffers (about 12 copies).
	largest := 4 * o.trained
	if len(o.sizes) > 0 {
		largest = o.sizes[len(o.sizes)-1]
	}
	if err := cli.Memory(fmt.Sprintf("-n %d images of %dx%d", o.n, largest, largest), 12, o.n, o.channels, largest, largest); err != nil {
		return nil, err
	}
	if *threads > 0 {
		o.onnx = append(o.onnx, onnx.WithThreads(*threads, 1))
	}
	o.onnx = append(o.onnx, o.device.Options()...)
	return o, nil
}

// maxSize bounds every size flag, in pixels.
const maxSize = 1 << 16

func strategyNames() string {
	var names []string
	for _, s := range resize.Strategies {
		names = append(names, s.String())
	}
	return strings.Join(names, ", ")
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// setup is what a method's stages run with: the sampling parameters, the
// sizes in sample space, the Codec of latent models and how to turn
// samples into pictures.
type setup struct {
	sampling    func() upscale.Sampling // fresh noise sources for each method
	trained     int                     // training size in sample space
	sizes       []int                   // stage sizes in sample space
	scale       int                     // pixels per sample-space pixel
	codec       upscale.Codec
	ug          guidance.UpsampleOptions
	toImage     func(context.Context, *tensor.Dense) (*tensor.Dense, error)
	closeModels func()
	sr          *superres.Model // nil without -sr
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parse(args, stderr)
	if err != nil {
		return err
	}
	var st *setup
	if st, err = open(ctx, o); err != nil {
		return err
	}
	defer st.closeModels()
	if o.sr != "" {
		if st.sr, err = superres.Open(o.sr, superres.Options{Scale: o.srScale}, o.onnx...); err != nil {
			return err
		}
		defer st.sr.Close()
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	finals := map[string]image.Image{}
	for _, m := range o.methods {
		stages, err := st.stages(m, o)
		if err != nil {
			return err
		}
		s := st.sampling()
		start := time.Now()
		s.Progress = func(stage int, p sampler.ProgressInfo) error {
			fmt.Fprintf(stderr, "\r%-10s stage %d/%d step %3d/%d", m, stage+1, len(stages), p.Step+1, p.Steps)
			return nil
		}
		outs, err := upscale.Run(ctx, s, nil, stages...)
		if err != nil {
			return fmt.Errorf("%s: %w", m, err)
		}
		fmt.Fprintf(stderr, "\r%-10s %d images in %.1fs%30s\n", m, o.n, time.Since(start).Seconds(), "")
		for i, x := range outs {
			img, err := st.picture(ctx, x, o.cols)
			if err != nil {
				return err
			}
			size := x.Shape()[2] * st.scale
			p := filepath.Join(o.out, fmt.Sprintf("%s_%d_%d.png", m, i, size))
			if err := picture.WritePNG(p, img); err != nil {
				return err
			}
			fmt.Fprintln(stdout, "wrote", p)
			if i == len(outs)-1 {
				finals[m] = img
			}
		}
	}
	var row []image.Image
	for _, m := range o.methods {
		row = append(row, finals[m])
	}
	p := filepath.Join(o.out, fmt.Sprintf("compare_%d.png", st.sizes[len(st.sizes)-1]*st.scale))
	if err := picture.WritePNG(p, picture.SideBySide(12, row...)); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "wrote", p, "("+strings.Join(o.methods, ", ")+")")
	return nil
}

// stages returns the stages of method m.
func (st *setup) stages(m string, o *options) ([]upscale.Stage, error) {
	ug := st.ug
	var out []upscale.Stage
	switch m {
	case "ug":
		last := st.sizes[len(st.sizes)-1]
		out = append(out, upscale.Generate{Height: last, Width: last, Upsample: &ug})
	case "ug-stages":
		out = append(out, upscale.Generate{Height: st.sizes[0], Width: st.sizes[0], Upsample: &ug})
		for _, s := range st.sizes[1:] {
			out = append(out, upscale.Refine{Height: s, Width: s, Strength: o.strength, Filter: o.filter, Codec: st.codec, Upsample: &ug})
		}
	case "refine", "scalediff":
		out = append(out, upscale.Generate{Height: st.trained, Width: st.trained})
		for _, s := range st.sizes {
			r := upscale.Refine{Height: s, Width: s, Strength: o.strength, Filter: o.filter, Codec: st.codec}
			if m == "scalediff" {
				r.Mix = &upscale.MixOptions{Cutoff: o.cutoff}
				r.Structure = &guidance.StructureOptions{Cutoff: o.cutoff}
			}
			out = append(out, r)
		}
	case "sr", "sr-refine":
		last := st.sizes[len(st.sizes)-1]
		out = append(out, upscale.Generate{Height: st.trained, Width: st.trained},
			superres.Stage{Model: st.sr, Height: last, Width: last, Filter: o.filter, Codec: st.codec})
		if m == "sr-refine" {
			out = append(out, upscale.Refine{Height: last, Width: last, Strength: o.strength, Filter: o.filter, Codec: st.codec,
				Structure: &guidance.StructureOptions{Cutoff: o.cutoff}})
		}
	default:
		return nil, fmt.Errorf("unknown method %q", m)
	}
	return out, nil
}

// picture turns samples into a grid image.
func (st *setup) picture(ctx context.Context, x *tensor.Dense, cols int) (image.Image, error) {
	img, err := st.toImage(ctx, x)
	if err != nil {
		return nil, err
	}
	if c := img.Shape()[1]; c != 1 && c != 3 {
		s := img.Shape()
		per := s[2] * s[3]
		first := make([]float32, s[0]*per)
		for i := range s[0] {
			copy(first[i*per:(i+1)*per], img.Float32s()[i*c*per:i*c*per+per])
		}
		img = tensor.New(tensor.WithShape(s[0], 1, s[2], s[3]), tensor.WithBacking(first))
	}
	return picture.Grid(img, cols, 2)
}

// open loads the model: a file is a pixel-space model, a folder a Stable
// Diffusion pipeline.
func open(ctx context.Context, o *options) (*setup, error) {
	path := o.model
	if path == "" {
		p, err := fashion.FindFile("testdata/models/fashion_unet.onnx")
		if err != nil {
			return nil, fmt.Errorf("shipped model: %w (pass -model)", err)
		}
		path = p
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		if o.strength == 0 {
			o.strength = 0.5
		}
		return openLatent(ctx, path, o)
	}
	if o.strength == 0 {
		// The linear schedule of pixel models leaves little signal above
		// t = 300 (abar 0.28): stronger refinements redraw the picture.
		o.strength = 0.3
	}
	return openPixel(path, o)
}

func openPixel(path string, o *options) (*setup, error) {
	model, err := onnx.Open(path, o.onnx...)
	if err != nil {
		return nil, err
	}
	sizes := o.sizes
	if sizes == nil {
		sizes = []int{2 * o.trained, 4 * o.trained}
	}
	if err := checkSizes(sizes, o.trained, 1); err != nil {
		model.Close()
		return nil, err
	}
	sched := fashion.Schedule()
	ddim, err := sampler.NewDDIM(schedule.DefaultConfig())
	if err != nil {
		model.Close()
		return nil, err
	}
	ddim.Schedule = sched
	seeds := fashion.Seeds(o.seed, o.n)
	ug := guidance.DefaultUpsampleOptions()
	ug.Factors = nil // derived from the training size at each stage
	return &setup{
		sampling: func() upscale.Sampling {
			return upscale.Sampling{
				Model: model, Schedule: sched, Solver: ddim, Steps: o.steps,
				Channels: o.channels, Trained: [2]int{o.trained, o.trained},
				Noise: noise.TorchSeeds(seeds...),
			}
		},
		trained: o.trained, sizes: sizes, scale: 1, ug: ug,
		toImage:     func(_ context.Context, x *tensor.Dense) (*tensor.Dense, error) { return x, nil },
		closeModels: func() { model.Close() },
	}, nil
}

func openLatent(ctx context.Context, dir string, o *options) (*setup, error) {
	var lo []pipeline.Option
	lo = append(lo, pipeline.WithONNXOptions(o.onnx...))
	if o.sampleSize > 0 {
		lo = append(lo, pipeline.WithSampleSize(o.sampleSize))
	}
	m, err := pipeline.Load(dir, lo...)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			m.Close()
		}
	}()
	info := m.Info()
	vs := info.VAEScale
	sizes := o.sizes
	if sizes == nil {
		sizes = []int{2 * info.SampleSize}
	}
	if err := checkSizes(sizes, info.SampleSize, vs); err != nil {
		return nil, err
	}
	latent := make([]int, len(sizes))
	for i, s := range sizes {
		latent[i] = s / vs
	}
	vae, err := m.OpenVAE(pipeline.DecodeOptions{}, o.onnx...)
	if err != nil {
		return nil, err
	}
	plan, err := m.Resolve(pipeline.Request{Steps: o.steps, GuidanceScale: &o.cfg, Images: o.n, Upsample: &guidance.UpsampleOptions{}})
	if err != nil {
		vae.Close()
		return nil, err
	}
	emb, _, err := m.EncodePrompts(ctx, o.prompt, o.negative)
	if err != nil {
		vae.Close()
		return nil, err
	}
	one := info.SequenceLength * info.HiddenSize
	es := emb.Float32s()
	cond := tensor.New(tensor.WithShape(1, info.SequenceLength, info.HiddenSize), tensor.WithBacking(es[:one]))
	uncond := tensor.New(tensor.WithShape(1, info.SequenceLength, info.HiddenSize), tensor.WithBacking(es[one:]))
	model, err := m.Denoiser(plan, cond, uncond)
	if err != nil {
		vae.Close()
		return nil, err
	}
	ug := guidance.LatentUpsampleOptions()
	base := info.SampleSize / vs
	ok = true
	return &setup{
		sampling: func() upscale.Sampling {
			return upscale.Sampling{
				Model: model, Prediction: info.Scheduler.PredictionType,
				Schedule: m.Schedule(), Solver: plan.Solver(), Steps: plan.Steps,
				Channels: info.LatentChannels, Trained: [2]int{base, base},
				Noise: noise.TorchSeeds(o.seed), Batch: o.n, // one draw over the batch, as diffusers
			}
		},
		trained: base, sizes: latent, scale: vs, codec: vae, ug: ug,
		toImage:     vae.Decode,
		closeModels: func() { vae.Close(); m.Close() },
	}, nil
}

// checkSizes verifies that the stage sizes are multiples of the training
// size (Upsample Guidance and the refinements need integer factors) and of
// the VAE scale.
func checkSizes(sizes []int, trained, vs int) error {
	for _, s := range sizes {
		if s <= trained || s%trained != 0 || s%vs != 0 {
			return fmt.Errorf("-sizes: %d is not a multiple above the training size %d", s, trained)
		}
	}
	return nil
}
