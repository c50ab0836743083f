package pipeline

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"slices"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/onnx"
	"github.com/ugo-diffusion/ugo/picture"
	"github.com/ugo-diffusion/ugo/sampler"
	"github.com/ugo-diffusion/ugo/schedule"
	"github.com/ugo-diffusion/ugo/tiling"
)

// Some of the samplers accepted in Request.Sampler: the short names of
// sampler.Kinds.
const (
	// SamplerDDIM is diffusers' DDIMScheduler (deterministic unless
	// Request.DDIMEta > 0). It is the default.
	SamplerDDIM = "ddim"
	// SamplerDDPM is diffusers' DDPMScheduler (ancestral).
	SamplerDDPM = "ddpm"
	// SamplerEuler is diffusers' EulerDiscreteScheduler.
	SamplerEuler = "euler"
	// SamplerEulerAncestral is diffusers' EulerAncestralDiscreteScheduler
	// ("Euler a").
	SamplerEulerAncestral = "euler_a"
	// SamplerDPMSolver is diffusers' DPMSolverMultistepScheduler with its
	// defaults: second-order DPM-Solver++ ("DPM++ 2M").
	SamplerDPMSolver = "dpm++2m"
	// SamplerPNDM is diffusers' PNDMScheduler, which Stable Diffusion 1.x
	// and 2.x folders name (with skip_prk_steps: PLMS).
	SamplerPNDM = "pndm"
	// SamplerUniPC is diffusers' UniPCMultistepScheduler.
	SamplerUniPC = "unipc"
)

// Samplers lists the short names Request.Sampler accepts, from the one
// name table of package sampler (sampler.Kinds); the diffusers class names
// of that table are accepted too.
var Samplers = sampler.Names()

// Defaults of Request fields left at zero (Steps) or nil (GuidanceScale).
const (
	DefaultSteps         = 50
	DefaultGuidanceScale = 7.5
)

// Request describes one text-to-image generation. Zero fields take the
// defaults noted.
type Request struct {
	// Prompt and NegativePrompt condition the two branches of
	// classifier-free guidance (the negative prompt replaces the empty one).
	// For SDXL with force_zeros_for_empty_prompt (model_index.json, true
	// by default) an empty NegativePrompt is diffusers' negative_prompt=None:
	// the unconditional branch gets zero states and pooled embedding;
	// " " encodes the empty prompt instead, as diffusers' "" does.
	Prompt, NegativePrompt string
	// Width and Height are the image size in pixels, multiples of the VAE
	// scale (Info.VAEScale: 8 for SD, 4 for the Fashion-MNIST models in
	// testdata/models). 0 means the model's SampleSize.
	Width, Height int
	// Steps is the number of sampling steps (default DefaultSteps).
	Steps int
	// Sampler is one of Samplers or a diffusers class name of
	// sampler.Kinds (default SamplerDDIM), configured from
	// scheduler/scheduler_config.json as diffusers' from_config would: the
	// schedule, prediction type and steps offset are the file's, and so is
	// the timestep spacing when the file names one; otherwise each sampler
	// keeps its diffusers default (leading for DDIM and DDPM, linspace for
	// the others).
	Sampler string
	// DDIMEta is DDIM's eta (0, the default, is deterministic DDIM).
	DDIMEta float64
	// GuidanceScale points to the classifier-free guidance scale s in
	// eps_u + s*(eps_c - eps_u). As in diffusers, CFG runs only when
	// s > 1: a scale <= 1, 0 included (diffusers' guidance_scale=0.0 for
	// SD-Turbo and LCM), runs the conditional branch alone and skips the
	// negative prompt. nil means DefaultGuidanceScale, diffusers' default
	// when guidance_scale is not passed; new(0.0) turns CFG off. The scale
	// must be finite.
	GuidanceScale *float64
	// Seed seeds the default noise source, noise.NewTorchCPU(Seed), which
	// draws the same initial latents as torch.randn(shape,
	// generator=torch.manual_seed(Seed)) on the CPU.
	Seed uint64
	// Noise, when not nil, replaces the seeded source (for example
	// noise.NewPhilox to match the AUTOMATIC1111 webui's GPU seeds). It is
	// used for the initial latents and then for every step that draws noise.
	Noise noise.Source
	// Images is the number of images (num_images_per_prompt, default 1).
	// Their latents are drawn in one call, as diffusers does.
	Images int
	// Upsample configures Upsample Guidance. nil means
	// guidance.LatentUpsampleOptions() (Theta 1.2, Eta 0.6, the settings
	// the public implementations use for Stable Diffusion 1.5 at
	// 1024x1024, also used at 3x and 4x, where they have not been tuned);
	// &guidance.UpsampleOptions{} turns it off. nil Factors are chosen per
	// axis as the largest f <= size/SampleSize that divides the latent
	// size: 1024x1024 on a 512 model gives [2, 2], 1536x1024 gives [3, 2],
	// 768x768 gives [1, 1] (no guidance); given Factors are two, [fH, fW].
	// Prediction is the scheduler config's prediction type: "" takes it,
	// another value is refused. The options are checked
	// (guidance.UpsampleOptions.Validate) even where guidance would not
	// apply.
	Upsample *guidance.UpsampleOptions
	// Decode configures VAE decoding (tiling).
	Decode DecodeOptions
	// Tile, if not nil, runs the UNet on overlapping tiles of the sampled
	// latents (package tiling): each tile call is classifier-free guided,
	// and under Upsample Guidance only the full-resolution call is tiled
	// (the low-resolution one runs whole, at the training size). A zero
	// Tile.Size means the training size in latent pixels (SampleSize over
	// the VAE scale). A UNet export with static spatial axes then only
	// needs to take the tile size. The UNet's memory follows the tile
	// size instead of the image size.
	Tile *tiling.Options
	// Progress, if not nil, is called after the text encoding, after every
	// sampling step and after every decoded tile; an error stops the run.
	Progress func(Progress) error
}

// Stage names a phase of Generate.
type Stage int

// The stages of Generate, in order.
const (
	StageEncode Stage = iota
	StageDenoise
	StageDecode
)

// String returns "encode", "denoise" or "decode".
func (s Stage) String() string {
	switch s {
	case StageEncode:
		return "encode"
	case StageDenoise:
		return "denoise"
	case StageDecode:
		return "decode"
	}
	return fmt.Sprintf("Stage(%d)", int(s))
}

// Progress reports a completed unit of work. While denoising it carries
// the sampler's own report of the step (sampler.ProgressInfo); encoding and
// decoding are phases of the pipeline that are not sampling steps, which is
// why it is a type of its own.
type Progress struct {
	// Stage is the phase; Done of Total units are complete (steps while
	// denoising, tiles over all images while decoding).
	Stage       Stage
	Done, Total int
	// Step is the sampler's report of the denoising step just done
	// (StageDenoise only; zero otherwise): Step.ModelTimestep is the
	// training timestep the UNet saw (fractional for some samplers), and
	// Step.Sample and Step.X0 the latents and the predicted clean latents,
	// valid during the call only. Upsampled says whether Upsample Guidance
	// was on at the step.
	Step      sampler.ProgressInfo
	Upsampled bool
}

// Settings is a request resolved against a model (by Model.Resolve): every
// default filled in and every size checked.
type Settings struct {
	// Width and Height are the image size in pixels; Latent the shape
	// [N, C, H/s, W/s] of the sampled latents (C the latent channels, s
	// the VAE scale).
	Width, Height int
	Latent        []int
	// Steps, Sampler and Timesteps describe the sampling run (timesteps
	// are fractional for the Euler samplers on linspace spacing).
	Steps     int
	Sampler   string
	Timesteps []float32
	// GuidanceScale is the classifier-free guidance scale, and CFG whether
	// the unconditional branch runs (scale > 1).
	GuidanceScale float64
	CFG           bool
	// Upsample is the Upsample Guidance the run applies, nil when it is
	// off (Theta 0, or factors [1, 1]): the request's options with the
	// factors [fH, fW] resolved and the model's prediction type.
	// GuidedSteps is the number of steps at which it is on.
	Upsample    *guidance.UpsampleOptions
	GuidedSteps int
	// TilesPerImage is the number of VAE decoder calls per image (1: whole).
	TilesPerImage int
	// Tile is the request's UNet tiling with its size resolved, nil when
	// the UNet runs on the whole latent.
	Tile *tiling.Options

	solver sampler.Solver
}

// Resolve resolves req against the model: defaults, sizes, Upsample
// Guidance factors and the sampler. It runs nothing.
func (m *Model) Resolve(req Request) (*Settings, error) {
	if err := m.usable(); err != nil {
		return nil, err
	}
	info := &m.info
	p := &Settings{Width: req.Width, Height: req.Height, Steps: req.Steps, Sampler: req.Sampler, GuidanceScale: DefaultGuidanceScale}
	if req.GuidanceScale != nil {
		p.GuidanceScale = *req.GuidanceScale
	}
	if p.Width == 0 {
		p.Width = info.SampleSize
	}
	if p.Height == 0 {
		p.Height = info.SampleSize
	}
	vs := info.VAEScale
	for _, d := range []struct {
		name string
		v    int
	}{{"width", p.Width}, {"height", p.Height}} {
		if d.v < vs || d.v%vs != 0 {
			return nil, fmt.Errorf("pipeline: %s %d is not a positive multiple of %d (the VAE scale)", d.name, d.v, vs)
		}
		if d.v > MaxSampleSize {
			return nil, fmt.Errorf("pipeline: %s %d is too large (at most %d)", d.name, d.v, MaxSampleSize)
		}
	}
	n := req.Images
	if n == 0 {
		n = 1
	}
	if n < 0 || n > 64 {
		return nil, fmt.Errorf("pipeline: Images is %d, want 1 to 64", req.Images)
	}
	p.Latent = []int{n, info.LatentChannels, p.Height / vs, p.Width / vs}
	if need := requestBytes(p.Latent, p.Width, p.Height); need > ugo.MemoryLimit() {
		return nil, ugo.CheckMemory(fmt.Sprintf("pipeline: %d %dx%d images", n, p.Width, p.Height), need)
	}
	if req.Tile != nil {
		t := *req.Tile
		if t.Size == [2]int{} {
			base := info.SampleSize / vs
			t.Size = [2]int{base, base}
		}
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("pipeline: %w", err)
		}
		p.Tile = &t
	}
	if err := m.checkUNetShape(p.tileShape(), nil); err != nil {
		return nil, fmt.Errorf("pipeline: the UNet cannot take %dx%d images: %w", p.Width, p.Height, err)
	}
	if p.Steps == 0 {
		p.Steps = DefaultSteps
	}
	if !(math.Abs(p.GuidanceScale) <= math.MaxFloat32) {
		return nil, fmt.Errorf("pipeline: guidance scale %v is not finite in float32", p.GuidanceScale)
	}
	p.CFG = p.GuidanceScale > 1
	if p.Sampler == "" {
		p.Sampler = SamplerDDIM
	}
	// sampler.New applies the sampler's own diffusers defaults to the keys
	// the file does not give (timestep_spacing: leading for DDIM, DDPM and
	// PNDM, linspace for the others).
	sc := info.Scheduler
	kind, err := sampler.Lookup(p.Sampler)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	p.solver, err = sampler.New(kind.Name, sc)
	if d, ok := p.solver.(*sampler.DDIM); ok && err == nil {
		if !(req.DDIMEta >= 0) || math.IsInf(req.DDIMEta, 0) {
			return nil, fmt.Errorf("pipeline: DDIM eta %v must be a finite number >= 0", req.DDIMEta)
		}
		d.Eta = req.DDIMEta
	}
	if err != nil {
		return nil, fmt.Errorf("pipeline: %s sampler from %s: %w", p.Sampler, SchedulerConfigPath, err)
	}
	sp, err := p.solver.Trajectory(p.Steps)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %d steps: %w", p.Steps, err)
	}
	p.Timesteps = sp.Timesteps
	ts := sp.Timesteps

	ug := guidance.LatentUpsampleOptions()
	if req.Upsample != nil {
		ug = *req.Upsample
	}
	// Invalid settings are refused even at sizes where guidance turns out
	// not to apply.
	if err := ug.Validate(); err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	pred := info.Scheduler.PredictionType
	if ug.Prediction != "" && ug.Prediction != pred && !(pred == "" && ug.Prediction == schedule.PredictEpsilon) {
		return nil, fmt.Errorf("pipeline: Upsample Guidance Prediction %q, but the model predicts %q (leave it empty)", ug.Prediction, pred)
	}
	if ug.Theta != 0 {
		f, err := m.factors(p.Latent, ug.Factors)
		if err != nil {
			return nil, err
		}
		if f[0]*f[1] > 1 {
			if err := m.checkUNetShape(p.Latent, f); err != nil {
				return nil, fmt.Errorf("pipeline: the UNet cannot take the %dx%d low-resolution samples of Upsample Guidance %v: %w",
					p.Width/f[1], p.Height/f[0], f, err)
			}
			ug.Factors, ug.Prediction = f, pred
			p.Upsample = &ug
			for _, t := range ts {
				if ug.Active(float64(t), m.sched.Len()) {
					p.GuidedSteps++
				}
			}
		}
	}
	tiles, err := req.Decode.plan(p.Latent[2], p.Latent[3], vs)
	if err != nil {
		return nil, err
	}
	p.TilesPerImage = len(tiles.ys) * len(tiles.xs)
	return p, nil
}

// tileShape returns the shape of the UNet's full-resolution calls: the
// latent, or a tile of it.
func (p *Settings) tileShape() []int {
	if p.Tile == nil {
		return p.Latent
	}
	s := slices.Clone(p.Latent)
	s[2], s[3] = min(s[2], p.Tile.Size[0]), min(s[3], p.Tile.Size[1])
	return s
}

// requestBytes estimates the memory of a request's own buffers: the latents
// with the sampler's and guidance's copies of them (8 in all, CFG's doubled
// batch included), the decoded float32 images with their tile blending
// weights, and the 8-bit RGBA pictures. The models' activations inside ONNX
// Runtime are not counted.
func requestBytes(latent []int, width, height int) int64 {
	n := latent[0]
	need := ugo.TensorBytes(8, latent...)
	for _, b := range []int64{ugo.TensorBytes(2, n, 3, height, width), ugo.TensorBytes(1, n, height, width)} {
		if b == math.MaxInt64 || need > math.MaxInt64-b {
			return math.MaxInt64
		}
		need += b
	}
	return need
}

// checkUNetShape checks a latent shape, divided by factors when given,
// against the UNet's fixed dimensions (a fixed batch is not checked: CFG
// doubles the batch).
func (m *Model) checkUNetShape(latent, factors []int) error {
	probe := slices.Clone(latent)
	if d := m.info.UNet.Sample.Dims[0]; d > 0 {
		probe[0] = int(d)
	}
	for i, f := range factors {
		probe[2+i] /= f
	}
	return m.info.UNet.CheckShape(probe)
}

// factors resolves Upsample Guidance factors for a latent shape.
func (m *Model) factors(latent, given []int) ([]int, error) {
	base := m.info.SampleSize / m.info.VAEScale
	dims := latent[2:]
	if given != nil {
		if len(given) != 2 {
			return nil, fmt.Errorf("pipeline: Upsample Guidance factors %v, want two [height, width]", given)
		}
		for i, f := range given {
			if f < 1 || dims[i]%f != 0 {
				return nil, fmt.Errorf("pipeline: Upsample Guidance factor %d does not divide the latent %s %d (image %d)",
					f, [2]string{"height", "width"}[i], dims[i], dims[i]*m.info.VAEScale)
			}
		}
		return slices.Clone(given), nil
	}
	f := make([]int, 2)
	for i, d := range dims {
		k := max(1, d/base)
		for d%k != 0 {
			k--
		}
		f[i] = k
	}
	return f, nil
}

// Denoiser returns the predictor (of the scheduler config's prediction
// type) a run with settings p samples with, conditioned on the prompt
// embeddings cond and uncond ([1 or N, sequence, hidden], from
// EncodePrompts): the UNet under classifier-free guidance (both branches in
// one batched UNet call when the export allows it, else two concurrent
// calls), run in tiles when p.Tile is set, and wrapped in Upsample Guidance
// when p.Upsample is set (the low-resolution call untiled). uncond is
// ignored when the settings have no CFG. An SDXL model also needs the
// pooled embeddings: use DenoiserFor.
func (m *Model) Denoiser(p *Settings, cond, uncond *tensor.Dense) (ugo.Denoiser, error) {
	return m.DenoiserFor(p, Conditioning{States: cond}, Conditioning{States: uncond})
}

// DenoiserFor is Denoiser for conditioning from Encode, which SDXL models
// need (the pooled text_embeds besides the states). For SDXL the UNet's
// time_ids are derived per call from the ugo.Region on the call's context
// (see TimeIDs): [H, W, 0, 0, H, W] with the image size for a call over
// the whole sample, and the size the downsampled sample stands for in
// Upsample Guidance's low-resolution call.
func (m *Model) DenoiserFor(p *Settings, cond, uncond Conditioning) (ugo.Denoiser, error) {
	if err := m.usable(); err != nil {
		return nil, err
	}
	if p == nil {
		return nil, errors.New("pipeline: Denoiser: nil settings")
	}
	if m.info.SDXL {
		model, err := m.xlDenoiser(p, cond, uncond)
		if err != nil {
			return nil, err
		}
		return m.upsample(p, model)
	}
	c, err := m.unet.With(m.ehs, cond.States)
	if err != nil {
		return nil, fmt.Errorf("pipeline: conditional embeddings: %w", err)
	}
	var model ugo.Denoiser = c
	if p.CFG {
		u, err := m.unet.With(m.ehs, uncond.States)
		if err != nil {
			return nil, fmt.Errorf("pipeline: unconditional embeddings: %w", err)
		}
		cfg, err := onnx.BatchedCFG(c, u, p.GuidanceScale)
		if err != nil {
			return nil, fmt.Errorf("pipeline: %w", err)
		}
		model = cfg
		if !cfg.Batched() {
			model = guidance.CFG(c, u, p.GuidanceScale)
		}
	}
	return m.upsample(p, model)
}

// upsample wraps the guided UNet in the middleware (WithUNetMiddleware), tiling and Upsample
// Guidance.
func (m *Model) upsample(p *Settings, model ugo.Denoiser) (ugo.Denoiser, error) {
	if m.hook != nil {
		model = m.hook(model)
	}
	high := model
	if p.Tile != nil {
		var err error
		if high, err = tiling.Tiled(model, *p.Tile); err != nil {
			return nil, fmt.Errorf("pipeline: %w", err)
		}
	}
	if p.Upsample == nil {
		return high, nil
	}
	g, err := guidance.UpsampleHighLow(high, model, m.sched, *p.Upsample)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	return g, nil
}

// Result is the outcome of Generate.
type Result struct {
	// Settings is the resolved request.
	Settings *Settings
	// Latents are the sampled latents [N, C, h, w] (before division by the
	// scaling factor).
	Latents *tensor.Dense
	// Pixels are the decoded images [N, 3, H, W], values nominally in
	// [-1, 1].
	Pixels *tensor.Dense
	// Truncated reports that the prompt or the negative prompt was longer
	// than CLIP's 75 tokens and was cut.
	Truncated bool
}

// Image returns image i as an RGBA image (values clipped to [-1, 1] and
// mapped to 0..255 as diffusers does).
func (r *Result) Image(i int) (image.Image, error) {
	if r == nil || r.Pixels == nil || r.Pixels.Dims() != 4 {
		return nil, errors.New("pipeline: Image of an empty Result")
	}
	s := r.Pixels.Shape()
	if i < 0 || i >= s[0] {
		return nil, fmt.Errorf("pipeline: image %d of %d", i, s[0])
	}
	per := s[1] * s[2] * s[3]
	one := tensor.New(tensor.WithShape(1, s[1], s[2], s[3]), tensor.WithBacking(r.Pixels.Float32s()[i*per:(i+1)*per]))
	return picture.Grid(one, 1, 0)
}

// WritePNG writes the images to path as one PNG: a single image as is,
// several side by side with 8 grey pixels around and between them.
func (r *Result) WritePNG(path string) error {
	if r == nil || r.Pixels == nil || r.Pixels.Dims() != 4 {
		return errors.New("pipeline: WritePNG of an empty Result")
	}
	n := r.Pixels.Shape()[0]
	pad := 8
	if n == 1 {
		pad = 0
	}
	img, err := picture.Grid(r.Pixels, n, pad)
	if err != nil {
		return err
	}
	return picture.WritePNG(path, img)
}

// Generate runs text-to-image generation: it encodes the prompts, draws the
// initial latents, samples them with classifier-free guidance and Upsample
// Guidance, divides them by the VAE scaling factor and decodes them.
//
// With Upsample Guidance off (or at the training size), a DDIM run with
// eta 0 and the default noise source follows diffusers'
// StableDiffusionPipeline with DDIMScheduler.from_config(scheduler config)
// and generator=torch.manual_seed(Seed): same initial latents, timesteps,
// guidance and update; the pictures then differ only by the numerics of the
// ONNX export. See the package documentation.
func (m *Model) Generate(ctx context.Context, req Request) (*Result, error) {
	p, err := m.Resolve(req)
	if err != nil {
		return nil, err
	}
	report := func(pr Progress) error {
		if req.Progress == nil {
			return nil
		}
		return req.Progress(pr)
	}
	cond, uncond, trunc, err := m.encodeRequest(ctx, p, req)
	if err != nil {
		return nil, err
	}
	res := &Result{Settings: p, Truncated: trunc}
	if err := report(Progress{Stage: StageEncode, Done: 1, Total: 1}); err != nil {
		return nil, err
	}
	model, err := m.DenoiserFor(p, cond, uncond)
	if err != nil {
		return nil, err
	}

	src := req.Noise
	if src == nil {
		src = noise.NewTorchCPU(req.Seed)
	}
	x, err := noise.NewTensor(src, p.Latent...)
	if err != nil {
		return nil, fmt.Errorf("pipeline: initial latents: %w", err)
	}
	opts := sampler.Options{Steps: p.Steps, Noise: src}
	opts.Progress = func(pi sampler.ProgressInfo) error {
		return report(Progress{Stage: StageDenoise, Done: pi.Step + 1, Total: pi.Steps, Step: pi,
			Upsampled: p.Upsample != nil && p.Upsample.Active(float64(pi.ModelTimestep), m.sched.Len())})
	}
	if err := sampler.Sample(ctx, model, p.solver, x, opts); err != nil {
		return nil, fmt.Errorf("pipeline: sampling: %w", err)
	}
	res.Latents = x
	dopts := req.Decode
	if req.Progress != nil {
		dopts.progress = report
	}
	if res.Pixels, err = m.Decode(ctx, x, dopts); err != nil {
		return nil, err
	}
	return res, nil
}

// encodeRequest encodes the prompt, and the negative prompt under CFG, in
// one text encoder call. For SDXL an empty negative prompt under
// force_zeros_for_empty_prompt gives zero conditioning, as diffusers'
// StableDiffusionXLPipeline does when negative_prompt is None.
func (m *Model) encodeRequest(ctx context.Context, p *Settings, req Request) (cond, uncond Conditioning, truncated bool, err error) {
	zeros := p.CFG && m.info.SDXL && m.info.ForceZerosForEmptyPrompt && req.NegativePrompt == ""
	prompts := []string{req.Prompt}
	if p.CFG && !zeros {
		prompts = append(prompts, req.NegativePrompt)
	}
	emb, trunc, err := m.Encode(ctx, prompts...)
	if err != nil {
		return cond, uncond, false, err
	}
	cond = emb.row(0)
	switch {
	case zeros:
		uncond = zeroConditioning(cond)
	case p.CFG:
		uncond = emb.row(1)
	}
	return cond, uncond, slices.Contains(trunc, true), nil
}
