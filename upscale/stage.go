package upscale

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/resize"
	"github.com/ugo-diffusion/ugo/sampler"
	"github.com/ugo-diffusion/ugo/schedule"
	"github.com/ugo-diffusion/ugo/tiling"
)

// Sampling is what every stage samples with: a model, its schedule, a
// solver and the noise of each image. Stages wrap Model in Upsample
// Guidance and Structure Guidance themselves, so Model is the plain
// predictor (with classifier-free guidance for text-to-image models).
type Sampling struct {
	// Model predicts, at any size, what Prediction says. Required.
	Model ugo.Denoiser
	// Prediction is what Model predicts: the noise (schedule.PredictEpsilon, the
	// default ""), the velocity (schedule.PredictV) or the clean sample
	// (schedule.PredictSample); the Solver must read the model output the
	// same way. Upsample Guidance and Structure Guidance convert around
	// their terms accordingly; options of theirs that name another
	// prediction type are refused.
	Prediction schedule.PredictionType
	// Schedule is the model's training schedule, required by Upsample
	// Guidance and Structure Guidance.
	Schedule *schedule.Schedule
	// Solver and Steps set the sampler and the number of steps of a full
	// run; a refinement at strength r runs the last int(Steps*r). Required.
	Solver sampler.Solver
	Steps  int
	// Channels is the number of channels of a sample (1 for grey
	// Fashion-MNIST, 4 for Stable Diffusion latents); Generate needs it.
	Channels int
	// Trained is the resolution [H, W] the model was trained at, in sample
	// space (latent pixels for latent models). When set, Upsample
	// Guidance factors are derived from it: size / Trained per axis.
	Trained [2]int
	// Noise holds one source per image (see noise.PerImage and noise.TorchSeeds),
	// which every stage draws from in turn: the initial noise of Generate,
	// the noise that Refine adds, the noise of stochastic solver steps.
	// A single source serves the whole batch with one call per draw
	// (diffusers' single generator), and the batch size is then Batch.
	// Sources keep their state: a Sampling used again continues their
	// streams, so repeating a run takes new sources. Required.
	Noise []noise.Source
	// Batch is the number of images when Noise holds a single source; 0
	// means 1. With several sources it must be 0 or len(Noise).
	Batch int
	// Progress, if not nil, is called after every sampling step of every
	// stage with the index of the running stage among those given to Run
	// (0 when a stage runs on its own) and the sampler's report of the
	// step (its Step is the index in the stage's full run: a refinement at
	// strength r starts at Steps - int(Steps*r)); an error stops the run.
	Progress func(stage int, p sampler.ProgressInfo) error
	// ClampRange, when positive, clamps the clean sample of every step of
	// a stage with Upsample Guidance block-wise to [-ClampRange,
	// ClampRange] (guidance.BlockClamp with the stage's guidance options),
	// for pixel models whose data lie in a known range; the Solver's own
	// clip then finds nothing left to do. 0 leaves it to the Solver.
	ClampRange float64

	stage int // set by Run
}

// batch returns the number of images.
func (s *Sampling) batch() (int, error) {
	if len(s.Noise) == 0 {
		return 0, errors.New("upscale: Sampling.Noise is empty: give one source per image, or one for the batch")
	}
	for i, src := range s.Noise {
		if ugo.IsNil(src) {
			return 0, fmt.Errorf("upscale: Sampling.Noise[%d] is nil", i)
		}
	}
	if len(s.Noise) == 1 {
		if s.Batch < 0 {
			return 0, fmt.Errorf("upscale: Sampling.Batch %d, want >= 0", s.Batch)
		}
		return max(s.Batch, 1), nil
	}
	if s.Batch != 0 && s.Batch != len(s.Noise) {
		return 0, fmt.Errorf("upscale: Sampling.Batch %d with %d noise sources, want 0 or %d", s.Batch, len(s.Noise), len(s.Noise))
	}
	return len(s.Noise), nil
}

// check validates the fields every sampling stage needs.
func (s *Sampling) check() error {
	if s == nil || ugo.IsNil(s.Model) || ugo.IsNil(s.Solver) {
		return fmt.Errorf("upscale: Sampling needs a Model and a Solver: %w", ugo.ErrNilDenoiser)
	}
	if s.Schedule != nil && s.Schedule.Len() == 0 {
		return errors.New("upscale: Sampling.Schedule is empty (a zero schedule.Schedule)")
	}
	if s.Steps <= 0 {
		return fmt.Errorf("upscale: Sampling.Steps %d, want at least 1", s.Steps)
	}
	if s.Trained[0] < 0 || s.Trained[1] < 0 {
		return fmt.Errorf("upscale: Sampling.Trained %v, want positive sizes (or zero: unknown)", s.Trained)
	}
	_, err := s.batch()
	return err
}

// options returns the sampler options of a run of steps steps.
func (s *Sampling) options(steps int, strength float64, hook sampler.Hook) sampler.Options {
	o := sampler.Options{Steps: steps, Strength: strength, Noise: noise.PerImage(s.Noise...), Hook: hook}
	if s.Progress != nil {
		stage := s.stage
		o.Progress = func(p sampler.ProgressInfo) error { return s.Progress(stage, p) }
	}
	return o
}

// model returns Sampling.Model for samples h x w: run in tiles when tile is
// not nil, wrapped in Upsample Guidance when opts is not nil (with the
// untiled model for the low-resolution call), and the block clamp of
// ClampRange as the sampler hook of a guided run.
func (s *Sampling) model(tile *tiling.Options, opts *guidance.UpsampleOptions, h, w int) (ugo.Denoiser, sampler.Hook, error) {
	high := s.Model
	if tile != nil {
		o := *tile
		if o.Size == [2]int{} {
			if s.Trained[0] <= 0 || s.Trained[1] <= 0 {
				return nil, nil, errors.New("upscale: tiling needs Tile.Size or Sampling.Trained")
			}
			o.Size = s.Trained
		}
		var err error
		if high, err = tiling.Tiled(s.Model, o); err != nil {
			return nil, nil, fmt.Errorf("upscale: %w", err)
		}
	}
	return s.upsample(high, s.Model, opts, h, w)
}

// upsample wraps high (for the sample's resolution) and low (for the
// pooled sample) in Upsample Guidance for samples h x w, with the block
// clamp of ClampRange as the sampler hook, or returns high as it is (and
// no hook) when opts is nil.
func (s *Sampling) upsample(high, low ugo.Denoiser, opts *guidance.UpsampleOptions, h, w int) (ugo.Denoiser, sampler.Hook, error) {
	if opts == nil {
		return high, nil, nil
	}
	if s.Schedule == nil {
		return nil, nil, errors.New("upscale: Upsample Guidance needs Sampling.Schedule")
	}
	o := *opts
	if err := samePrediction("UpsampleOptions", o.Prediction, s.Prediction); err != nil {
		return nil, nil, err
	}
	o.Prediction = s.Prediction
	if th, tw := s.Trained[0], s.Trained[1]; th > 0 && tw > 0 {
		if h%th != 0 || w%tw != 0 {
			return nil, nil, fmt.Errorf("upscale: Upsample Guidance at %dx%d: not a multiple of the trained %dx%d", h, w, th, tw)
		}
		f := []int{h / th, w / tw}
		if o.Factors != nil && (len(o.Factors) != 2 || o.Factors[0] != f[0] || o.Factors[1] != f[1]) {
			return nil, nil, fmt.Errorf("upscale: Upsample Guidance factors %v at %dx%d, but the model was trained at %dx%d (factors %v); leave Factors nil to derive them",
				o.Factors, h, w, th, tw, f)
		}
		o.Factors = f
	} else if o.Factors == nil {
		return nil, nil, fmt.Errorf("upscale: Upsample Guidance at %dx%d needs Factors or Sampling.Trained", h, w)
	}
	g, err := guidance.UpsampleHighLow(high, low, s.Schedule, o)
	if err != nil {
		return nil, nil, fmt.Errorf("upscale: %w", err)
	}
	if !(s.ClampRange > 0) {
		return g, nil, nil
	}
	hook, err := guidance.BlockClamp(s.Schedule, o, s.ClampRange)
	if err != nil {
		return nil, nil, fmt.Errorf("upscale: %w", err)
	}
	return g, hook, nil
}

// samePrediction refuses a stage option naming a prediction type other than
// the Sampling's ("" in either means epsilon).
func samePrediction(what string, opt, s schedule.PredictionType) error {
	norm := func(p schedule.PredictionType) schedule.PredictionType {
		if p == "" {
			return schedule.PredictEpsilon
		}
		return p
	}
	if opt != "" && norm(opt) != norm(s) {
		return fmt.Errorf("upscale: %s.Prediction %q, but Sampling.Prediction is %q", what, opt, norm(s))
	}
	return nil
}

// A Stage is one step of an upscaling pipeline: it turns a batch of
// samples into another, usually larger. Generate, Refine and Interpolate are
// Stages; Run chains them.
type Stage interface {
	// Run returns the stage's output for the input x (nil for a stage
	// that samples from noise), sampling with s. It does not modify x.
	Run(ctx context.Context, s *Sampling, x *tensor.Dense) (*tensor.Dense, error)
}

// Run runs the stages in order, each on the output of the one before (the
// first on x, which may be nil when the first stage is a Generate), and
// returns every stage's output. On error it returns the outputs of the
// stages that completed.
func Run(ctx context.Context, s Sampling, x *tensor.Dense, stages ...Stage) ([]*tensor.Dense, error) {
	if len(stages) == 0 {
		return nil, errors.New("upscale: Run needs at least one stage")
	}
	outs := make([]*tensor.Dense, 0, len(stages))
	for i, st := range stages {
		if st == nil {
			return outs, fmt.Errorf("upscale: stage %d is nil", i)
		}
		s.stage = i
		y, err := st.Run(ctx, &s, x)
		if err != nil {
			return outs, fmt.Errorf("upscale: stage %d (%T): %w", i, st, err)
		}
		outs = append(outs, y)
		x = y
	}
	return outs, nil
}

// Generate is the stage that samples from noise at Height x Width, the usual
// first stage: at the training size, or above it with Upsample Guidance
// (the direct route). Its input is ignored. The initial noise is one draw
// per image from Sampling.Noise (or one over the batch from a single
// source), scaled by the solver's initial sigma.
type Generate struct {
	// Height and Width are the sample size. Required.
	Height, Width int
	// Upsample, if not nil, applies Upsample Guidance with these options.
	// Its Factors are derived from Sampling.Trained when that is set.
	Upsample *guidance.UpsampleOptions
	// Tile, if not nil, runs the model on overlapping tiles (package
	// tiling) of Tile.Size, or of Sampling.Trained when Tile.Size is zero.
	// With Upsample, only the high-resolution call is tiled; the
	// low-resolution one, at the training size, runs whole.
	Tile *tiling.Options
}

// Run implements Stage.
func (st Generate) Run(ctx context.Context, s *Sampling, _ *tensor.Dense) (*tensor.Dense, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if st.Height <= 0 || st.Width <= 0 || s.Channels <= 0 {
		return nil, fmt.Errorf("upscale: Generate of %dx%d with %d channels, want positive sizes (set Sampling.Channels)", st.Height, st.Width, s.Channels)
	}
	n, _ := s.batch()
	// The sample and the sampler's and guidance's buffers, about 8 copies.
	if need := ugo.TensorBytes(8, n, s.Channels, st.Height, st.Width); need > ugo.MemoryLimit() {
		return nil, ugo.CheckMemory(fmt.Sprintf("upscale: Generate of %d %dx%d images with %d channels", n, st.Height, st.Width, s.Channels), need)
	}
	model, hook, err := s.model(st.Tile, st.Upsample, st.Height, st.Width)
	if err != nil {
		return nil, err
	}
	x := tensor.New(tensor.WithShape(n, s.Channels, st.Height, st.Width), tensor.WithBacking(make([]float32, n*s.Channels*st.Height*st.Width)))
	opts := s.options(s.Steps, 0, hook)
	opts.Noise.Normal(x.Float32s())
	if err := sampler.Sample(ctx, model, s.Solver, x, opts); err != nil {
		return nil, err
	}
	return x, nil
}

// Codec maps the samples of a latent model to images and back: a VAE.
// Decode takes latents [N, C, h, w] (as the model samples them, scaling
// factor included) to images [N, 3, H, W] in [-1, 1]; Encode does the
// reverse. Both keep the ratio H/h = W/w (8 for Stable Diffusion).
// pipeline.VAE implements it for ONNX Stable Diffusion folders.
type Codec interface {
	Decode(ctx context.Context, latents *tensor.Dense) (*tensor.Dense, error)
	Encode(ctx context.Context, images *tensor.Dense) (*tensor.Dense, error)
}

// MixOptions configures Latent Frequency Mixing in Refine.
type MixOptions struct {
	// Cutoff is the sf of the low-pass (see LowPass); 0 means
	// DefaultCutoff.
	Cutoff float64
	// Filter upsamples in sample space (latent space for latent models)
	// the copy that gives the low frequencies; nil means resize.Bilinear.
	Filter resize.Strategy
}

// Refine is the SDEdit refinement stage (the hires fix, SD upscale, and
// each stage of ScaleDiff): it upscales its input to Height x Width, adds
// noise up to strength r (the level of step Steps - int(Steps*r) of the
// solver's trajectory, as img2img does) and denoises the rest of the way.
//
// The upscaled reference Z_ref is built as follows:
//
//   - the RGB-space copy Z_rgb: with a Codec, the input decoded, resized
//     with Filter in image space and encoded again; without one, the input
//     resized with Filter in sample space;
//   - without Mix, Z_ref = Z_rgb;
//   - with Mix (Latent Frequency Mixing), Z_ref = LP(Z_up) + (Z_rgb -
//     LP(Z_rgb)), where Z_up is the input resized with Mix.Filter in
//     sample space.
//
// For a pixel-space model (no Codec) both copies are resizes of the same
// pixels, and Mix takes the low frequencies from one filter (bilinear by
// default) and the high ones from another (Filter, bicubic by default):
// the latent-versus-RGB distinction of ScaleDiff has no counterpart.
//
// Denoising uses Sampling.Model wrapped, innermost first, in tiles (Tile),
// Upsample Guidance at the new size (Upsample) and Structure Guidance
// towards Z_ref (Structure), whose gamma falls from its weight at the first
// restarted step to 0 at the last.
type Refine struct {
	// Height and Width are the output size. Required.
	Height, Width int
	// Strength is the SDEdit strength r in (0, 1]: the fraction of the
	// Steps-step run that is redone. Required.
	Strength float64
	// Steps overrides Sampling.Steps for this stage when positive.
	Steps int
	// Filter upsamples the RGB-space copy; nil means resize.Bicubic.
	Filter resize.Strategy
	// Codec, if not nil, makes the RGB-space copy go through image space.
	Codec Codec
	// Mix, if not nil, enables Latent Frequency Mixing.
	Mix *MixOptions
	// Upsample, if not nil, applies Upsample Guidance at the new size. Its
	// Factors are derived from Sampling.Trained when that is set.
	Upsample *guidance.UpsampleOptions
	// Structure, if not nil, applies Structure Guidance; Refine sets its
	// From and To.
	Structure *guidance.StructureOptions
	// Tile, if not nil, runs the model on overlapping tiles (package
	// tiling) of Tile.Size, or of Sampling.Trained when Tile.Size is zero:
	// SD upscale. Seams are handled by the overlap and the blending, by
	// Tile.Jitter, and at coarse scale by Upsample Guidance, whose
	// low-resolution call runs whole; Structure Guidance acts on the whole
	// sample.
	Tile *tiling.Options
}

// Run implements Stage.
func (st Refine) Run(ctx context.Context, s *Sampling, x *tensor.Dense) (*tensor.Dense, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if !(st.Strength > 0 && st.Strength <= 1) {
		return nil, fmt.Errorf("upscale: Refine strength %v, want a value in (0, 1]", st.Strength)
	}
	steps := s.Steps
	if st.Steps > 0 {
		steps = st.Steps
	}
	if int(float64(steps)*st.Strength) == 0 {
		return nil, fmt.Errorf("upscale: Refine strength %v of %d steps leaves no step to run", st.Strength, steps)
	}
	shape, err := ugo.CheckSample("x", x)
	if err != nil {
		return nil, err
	}
	if n, _ := s.batch(); shape[0] != n {
		return nil, &ugo.ShapeError{What: "x", Got: shape, Want: fmt.Sprintf("a batch of %d (one per noise source)", n)}
	}
	if st.Structure != nil && s.Schedule == nil {
		return nil, errors.New("upscale: Structure Guidance needs Sampling.Schedule")
	}
	ref, err := Interpolate{Height: st.Height, Width: st.Width, Filter: st.Filter, Codec: st.Codec}.Run(ctx, s, x)
	if err != nil {
		return nil, err
	}
	if st.Mix != nil {
		f := st.Mix.Filter
		if f == nil {
			f = resize.Bilinear
		}
		low, err := resize.To(f, x, st.Height, st.Width)
		if err != nil {
			return nil, err
		}
		if ref, err = MixFrequencies(low, ref, st.Mix.Cutoff); err != nil {
			return nil, err
		}
	}
	model, hook, err := s.model(st.Tile, st.Upsample, st.Height, st.Width)
	if err != nil {
		return nil, err
	}
	if st.Structure != nil {
		p, err := s.Solver.Trajectory(steps)
		if err != nil {
			return nil, err
		}
		if p.Len() != steps {
			return nil, fmt.Errorf("upscale: the solver planned %d steps for %d", p.Len(), steps)
		}
		o := *st.Structure
		if err := samePrediction("StructureOptions", o.Prediction, s.Prediction); err != nil {
			return nil, err
		}
		o.Prediction = s.Prediction
		o.From = p.Timesteps[steps-int(float64(steps)*st.Strength)]
		o.To = p.Timesteps[steps-1]
		if model, err = guidance.StructureGuidance(model, s.Schedule, ref, o); err != nil {
			return nil, err
		}
	}
	out := tensor.New(tensor.WithShape(ref.Shape()...), tensor.WithBacking(append([]float32(nil), ref.Float32s()...)))
	if err := sampler.Sample(ctx, model, s.Solver, out, s.options(steps, st.Strength, hook)); err != nil {
		return nil, err
	}
	return out, nil
}

// Interpolate is the stage that only resizes, without diffusion: its input
// resized to Height x Width with Filter, through image space when Codec is
// set (decode, resize, encode). It is the baseline of the refinements and
// the first half of Refine.
type Interpolate struct {
	// Height and Width are the output size. Required.
	Height, Width int
	// Filter is the resampling strategy; nil means resize.Bicubic.
	Filter resize.Strategy
	// Codec, if not nil, makes the resize happen in image space.
	Codec Codec
}

// Run implements Stage. It does not use s, which may be nil.
func (st Interpolate) Run(ctx context.Context, _ *Sampling, x *tensor.Dense) (*tensor.Dense, error) {
	shape, err := ugo.CheckSample("x", x)
	if err != nil {
		return nil, err
	}
	if st.Height <= 0 || st.Width <= 0 {
		return nil, fmt.Errorf("upscale: resize to %dx%d, want positive sizes", st.Height, st.Width)
	}
	f := st.Filter
	if f == nil {
		f = resize.Bicubic
	}
	if st.Codec == nil {
		return resize.To(f, x, st.Height, st.Width)
	}
	img, err := st.Codec.Decode(ctx, x)
	if err != nil {
		return nil, fmt.Errorf("upscale: decode: %w", err)
	}
	is, err := ugo.CheckSample("decoded image", img)
	if err != nil {
		return nil, err
	}
	r := len(shape)
	if len(is) != r || is[0] != shape[0] || is[r-2]%shape[r-2] != 0 || is[r-1]%shape[r-1] != 0 || is[r-2]/shape[r-2] != is[r-1]/shape[r-1] {
		return nil, &ugo.ShapeError{What: "decoded image", Got: is, Want: fmt.Sprintf("an integer multiple, equal on both axes, of the latent %v", shape)}
	}
	scale := is[r-2] / shape[r-2]
	if st.Height*scale > math.MaxInt32 || st.Width*scale > math.MaxInt32 {
		return nil, fmt.Errorf("upscale: image of %dx%d is too large", st.Height*scale, st.Width*scale)
	}
	up, err := resize.To(f, img, st.Height*scale, st.Width*scale)
	if err != nil {
		return nil, err
	}
	z, err := st.Codec.Encode(ctx, up)
	if err != nil {
		return nil, fmt.Errorf("upscale: encode: %w", err)
	}
	want := append([]int(nil), shape...)
	want[r-2], want[r-1] = st.Height, st.Width
	if zs, err := ugo.CheckSample("encoded latents", z); err != nil {
		return nil, err
	} else if !slices.Equal([]int(zs), []int(want)) {
		return nil, &ugo.ShapeError{What: "encoded latents", Got: zs, Want: fmt.Sprintf("%v", want)}
	}
	return z, nil
}
